#include "engine/executor.h"

#include <algorithm>
#include <chrono>

namespace dnn {

Executor::Executor(Graph g, ExecOptions opt) : Executor(std::move(g), 0, SIZE_MAX, opt) {}

Executor::Executor(Graph g, size_t begin, size_t end, ExecOptions opt)
    : pool_(std::make_unique<ThreadPool>(opt.threads)) {
  if (end == SIZE_MAX) end = g.nodes.size();
  if (begin > end || end > g.nodes.size()) throw Error("executor: node range out of bounds");
  std::map<std::string, size_t> last_const_use;
  for (size_t i = begin; i < end; ++i)
    for (auto& in : g.nodes[i].inputs)
      if (g.constants.count(in)) last_const_use[in] = i;
  std::map<std::string, int> slot_of;
  auto slot = [&](const std::string& name) {
    auto it = slot_of.find(name);
    if (it != slot_of.end()) return it->second;
    int s = static_cast<int>(slots_.size());
    slots_.emplace_back();
    slot_of[name] = s;
    return s;
  };

  // Inputs of the range: graph inputs (with their declared shapes) or the live values at the cut.
  std::map<std::string, Shape> declared;
  for (auto& v : g.inputs) declared[v.name] = v.shape;
  for (auto& name : live_values_at(g, begin)) {
    bool used = false;
    for (size_t i = begin; i < end && !used; ++i)
      for (auto& in : g.nodes[i].inputs) used |= in == name;
    if (!used && end != g.nodes.size()) continue;
    auto it = declared.find(name);
    inputs_.push_back({name, it != declared.end() ? it->second : Shape{}});
    input_slots_.push_back(slot(name));
  }
  if (end == g.nodes.size())
    for (auto& o : g.outputs) outputs_.push_back(o.name);
  else
    outputs_ = live_values_at(g, end);

  // Shapes known at load: the range's declared inputs (an unknown batch taken as 1), then what the
  // layers compute from them. Each layer gets its own through prepare().
  std::map<std::string, Shape> known;
  for (auto& in : inputs_) {
    Shape s = in.shape;
    if (!s.empty() && s[0] < 0) s[0] = 1;
    if (!s.empty() && std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; })) known[in.name] = s;
  }

  for (size_t i = begin; i < end; ++i) {
    const Node& n = g.nodes[i];
    Step st;
    st.where = g.describe(n);
    std::vector<const Tensor*> consts;
    for (auto& in : n.inputs) {
      if (in.empty()) {
        st.in.push_back(-1);
        consts.push_back(nullptr);
        continue;
      }
      auto c = g.constants.find(in);
      if (c != g.constants.end()) {
        consts.push_back(&c->second);
        st.in.push_back(-1);  // given to the layer once, at load
        continue;
      }
      if (!slot_of.count(in)) throw ModelError(st.where + ": input '" + in + "' is not available in this range");
      consts.push_back(nullptr);
      st.in.push_back(slot(in));
    }
    for (auto& o : n.outputs) st.out.push_back(slot(o));
    std::vector<Shape> in_shapes;
    bool shapes_known = true;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      auto it = known.find(n.inputs[k]);
      if (n.inputs[k].empty() || consts[k] || it != known.end())
        in_shapes.push_back(n.inputs[k].empty() ? Shape{} : consts[k] ? consts[k]->shape() : it->second);
      else
        shapes_known = false;
    }
    st.layer = make_layer(n, consts);
    for (auto& in : n.inputs)
      if (last_const_use.count(in) && last_const_use[in] == i) g.constants.erase(in);
    if (shapes_known) {
      try {
        const std::vector<Shape> outs = st.layer->output_shapes(in_shapes);
        st.layer->prepare(in_shapes);
        for (size_t o = 0; o < n.outputs.size() && o < outs.size(); ++o) known[n.outputs[o]] = outs[o];
      } catch (const Error&) {
        // A model whose declared shapes do not fit: run() reports it, naming the input it was given.
      }
    }
    steps_.push_back(std::move(st));
  }
  for (auto& o : outputs_) {
    if (!slot_of.count(o)) throw ModelError("executor: output '" + o + "' is not produced in this range");
    output_slots_.push_back(slot_of[o]);
  }

  // Free each activation after its last consumer; keep outputs and constants.
  std::set<int> keep(output_slots_.begin(), output_slots_.end());
  std::map<int, size_t> last_use;
  for (size_t i = 0; i < steps_.size(); ++i)
    for (int s : steps_[i].in)
      if (s >= 0) last_use[s] = i;
  for (auto& kv : last_use)
    if (!keep.count(kv.first)) steps_[kv.second].free_after.push_back(kv.first);
  if (opt.fuse) fuse_steps(keep, last_use);
  set_buffer_cache_limit(opt.buffer_cache_bytes);
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs) {
  if (inputs.size() != inputs_.size())
    throw ShapeError("expected " + std::to_string(inputs_.size()) + " input tensor(s), got " +
                     std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Shape& want = inputs_[i].shape;
    const Shape& got = inputs[i].shape();
    bool ok = want.empty() || want.size() == got.size();
    for (size_t d = 0; ok && d < want.size(); ++d) ok = want[d] < 0 || want[d] == got[d];
    if (!ok || inputs[i].dtype() != DType::f32)
      throw ShapeError("input '" + inputs_[i].name + "' has shape " + to_string(got) + ", the model expects " +
                       to_string(want) + " (float32; -1 = any)");
    slots_[input_slots_[i]] = inputs[i];
  }
  RunContext parallel{pool_.get()}, serial{&serial_pool_};
  std::vector<const Tensor*> in;
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& st = steps_[i];
    if (st.absorbed) continue;
    in.clear();
    for (int s : st.in) in.push_back(s < 0 ? nullptr : &slots_[s]);
    std::vector<Tensor> out;
    const auto t0 = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    try {
      size_for(st, in);
      // A small layer runs on this thread alone: waking a worker would cost more than it saves.
      out = st.layer->forward(in, st.work < kMinParallelWork ? serial : parallel);
    } catch (const ShapeError& e) {
      throw ShapeError(st.where + ": " + e.what());
    }
    if (profiling_) {
      profile_[i].ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      profile_[i].macs = st.macs;
    }
    for (size_t k = 0; k < st.out.size() && k < out.size(); ++k) slots_[st.out[k]] = std::move(out[k]);
    for (int s : st.free_after) slots_[s] = Tensor();
  }
  std::vector<Tensor> result;
  for (int s : output_slots_) result.push_back(slots_[s]);
  for (int s : input_slots_) slots_[s] = Tensor();
  for (int s : output_slots_) slots_[s] = Tensor();
  return result;
}

// The step's multiply-accumulates and work for these inputs, recomputed only when the first input's
// shape changes (frames repeat shapes; macs() works out output shapes).
void Executor::size_for(Step& st, const std::vector<const Tensor*>& in) {
  const Shape first = in.empty() || !in[0] ? Shape{} : in[0]->shape();
  if (st.sized && first == st.sized_for) return;
  std::vector<Shape> shapes;
  for (auto* t : in) shapes.push_back(t ? t->shape() : Shape{});
  st.macs = st.layer->macs(shapes);
  st.work = std::max(st.macs, numel(first));
  st.sized_for = first;
  st.sized = true;
}

// Step i takes over the steps after it, one by one, while the next one's first input is its only
// output, read by nothing else, and the layer has a fused kernel for it. The taken step's other
// non-constant inputs are appended to step i's.
void Executor::fuse_steps(const std::set<int>& keep, const std::map<int, size_t>& last_use) {
  auto activations = [](const Step& s) { return std::count_if(s.in.begin(), s.in.end(), [](int x) { return x >= 0; }); };
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& a = steps_[i];
    if (a.absorbed || activations(a) != 1) continue;
    for (size_t j = i + 1; j < steps_.size(); ++j) {
      Step& b = steps_[j];
      if (a.out.size() != 1 || b.in.empty() || b.in[0] != a.out[0] || keep.count(a.out[0]) ||
          last_use.at(a.out[0]) != j || std::count(b.in.begin() + 1, b.in.end(), a.out[0]) || !a.layer->absorb(*b.layer))
        break;
      for (size_t k = 1; k < b.in.size(); ++k)
        if (b.in[k] >= 0) a.in.push_back(b.in[k]);
      a.out = b.out;
      a.free_after.insert(a.free_after.end(), b.free_after.begin(), b.free_after.end());
      a.where += " + " + b.where;
      b.absorbed = true;
    }
  }
}

void Executor::set_profiling(bool on) {
  profiling_ = on;
  profile_.clear();
  if (on)
    for (auto& st : steps_) profile_.push_back({st.absorbed ? "" : st.where});
}

}  // namespace dnn
