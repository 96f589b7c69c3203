// Graph rewrites after canonicalisation: remove what inference does not need, fold BatchNormalization
// into the weights before it, and fuse residual adds and activations into Conv/Gemm so each runs in
// the convolution's output loop. A pattern that does not match exactly leaves the graph unchanged.
#include "onnx/passes.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/operators.h"

namespace dnn {

namespace {

// Indices of the nodes reading `value`.
std::vector<int> consumers(const Graph& g, const std::string& value) {
  std::vector<int> out;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (auto& in : g.nodes[i].inputs)
      if (in == value) {
        out.push_back(int(i));
        break;
      }
  return out;
}

bool is_graph_output(const Graph& g, const std::string& value) {
  for (auto& o : g.outputs)
    if (o.name == value) return true;
  return false;
}

// Points every node input named `from` at `to`.
void rename_uses(Graph& g, const std::string& from, const std::string& to) {
  for (auto& n : g.nodes)
    for (auto& in : n.inputs)
      if (in == from) in = to;
}

// `base`, or base_2, base_3, ...: a name no constant, node output or graph input has.
std::string fresh_constant_name(const Graph& g, const std::string& base) {
  std::set<std::string> taken;
  for (auto& n : g.nodes) taken.insert(n.outputs.begin(), n.outputs.end());
  for (auto& v : g.inputs) taken.insert(v.name);
  std::string name = base;
  for (int k = 2; g.constants.count(name) || taken.count(name); ++k) name = base + "_" + std::to_string(k);
  return name;
}

// A node another rewrite absorbed: emptied now, erased at the end of the pass.
void absorb(Node& n) {
  n.op.clear();
  n.inputs.clear();
  n.outputs.clear();
}
void erase_absorbed(Graph& g) {
  g.nodes.erase(std::remove_if(g.nodes.begin(), g.nodes.end(), [](const Node& n) { return n.op.empty(); }),
                g.nodes.end());
}

// The only node reading `value`, if it has exactly one reader and is not a graph output; else -1.
int sole_consumer(const Graph& g, const std::string& value) {
  auto c = consumers(g, value);
  return c.size() == 1 && !is_graph_output(g, value) ? c[0] : -1;
}

const Tensor* f32_constant(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i].empty()) return nullptr;
  auto it = g.constants.find(n.inputs[i]);
  return it != g.constants.end() && it->second.dtype() == DType::f32 ? &it->second : nullptr;
}

bool same_known_shape(const ShapeMap& shapes, const std::string& a, const std::string& b) {
  auto x = shapes.find(a), y = shapes.find(b);
  return x != shapes.end() && y != shapes.end() && !x->second.empty() && x->second == y->second;
}

Tensor transpose_2d(const Tensor& t) {
  int64_t r = t.dim(0), c = t.dim(1);
  Tensor out({c, r});
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) out.f32()[j * r + i] = t.f32()[i * c + j];
  return out;
}

// Gemm's C as a 1-D [n] bias scaled by beta, when it broadcasts along rows ([], [1], [n], [1,n]).
bool bias_vector(const Tensor& c, int64_t n, float beta, Tensor& out) {
  int64_t count = c.numel();
  bool row = c.rank() <= 1 || (c.rank() == 2 && c.dim(0) == 1);
  if (!row || (count != n && count != 1)) return false;
  out = Tensor({n});
  for (int64_t j = 0; j < n; ++j) out.f32()[j] = beta * c.f32()[count == 1 ? 0 : j];
  return true;
}

bool is_canonical_gemm(const Graph& g, const Node& n) {
  return n.op == "Gemm" && n.attrs.i("transB", 0) == 1 && n.attrs.f("alpha", 1.f) == 1.f && f32_constant(g, n, 1);
}

}  // namespace

void remove_passthrough_nodes(Graph& g) {
  for (auto& n : g.nodes) {
    if ((n.op != "Identity" && n.op != "Dropout") || n.inputs.empty() || n.outputs.empty()) continue;
    bool extra_output_used = false;  // Dropout's mask
    for (size_t k = 1; k < n.outputs.size(); ++k)
      extra_output_used |= !n.outputs[k].empty() && (!consumers(g, n.outputs[k]).empty() || is_graph_output(g, n.outputs[k]));
    if (extra_output_used) continue;
    const std::string in = n.inputs.at(0), out = n.outputs.at(0);
    if (!is_graph_output(g, out)) {
      absorb(n);
      rename_uses(g, out, in);
      continue;
    }
    // The output is a graph output: keep its name by renaming the producer's output instead.
    int p = g.producer(in);
    if (p < 0 || is_graph_output(g, in)) continue;  // fed by a graph input or constant: keep the node
    absorb(n);
    for (auto& o : g.nodes[p].outputs)
      if (o == in) o = out;
    rename_uses(g, in, out);
  }
  erase_absorbed(g);
}

void gemm_weights_canonical(Graph& g, const ShapeMap& shapes) {
  for (auto& n : g.nodes) {
    if (n.op == "MatMul") {
      const Tensor* b = f32_constant(g, n, 1);
      auto a = shapes.find(n.inputs[0]);
      if (!b || b->rank() != 2 || a == shapes.end() || a->second.size() != 2) continue;
      n.op = "Gemm";
      n.attrs = Attrs();
      std::string w = fresh_constant_name(g, n.inputs[1] + "/nk");
      g.constants[w] = transpose_2d(*b);
      n.inputs[1] = w;
      n.attrs.set("transA", int64_t(0));
      n.attrs.set("transB", int64_t(1));
      n.attrs.set("alpha", 1.f);
      n.attrs.set("beta", 1.f);
      // MatMul + Add(bias): the bias becomes Gemm's C.
      int add = sole_consumer(g, n.outputs[0]);
      if (add >= 0 && g.nodes[add].op == "Add" && g.nodes[add].inputs.size() == 2) {
        Node& a_node = g.nodes[add];
        size_t other = a_node.inputs[0] == n.outputs[0] ? 1 : 0;
        const Tensor* c = f32_constant(g, a_node, other);
        Tensor bias;
        if (c && bias_vector(*c, b->dim(1), 1.f, bias)) {
          std::string name = fresh_constant_name(g, a_node.inputs[other] + "/bias");
          g.constants[name] = bias;
          n.inputs.push_back(name);
          n.outputs[0] = a_node.outputs[0];
          absorb(a_node);
        }
      }
    } else if (n.op == "Gemm" && f32_constant(g, n, 1) && n.attrs.i("transA", 0) == 0) {
      // B -> alpha * B stored [N, K] (transB=1); C -> beta * C as a 1-D [N] bias where it broadcasts.
      const Tensor& b = *f32_constant(g, n, 1);
      if (b.rank() != 2) throw ModelError(g.describe(n) + ": B must be 2-D, got " + to_string(b.shape()));
      const bool trans_b = n.attrs.i("transB", 0) != 0;
      const float alpha = n.attrs.f("alpha", 1.f), beta = n.attrs.f("beta", 1.f);
      const int64_t outputs = trans_b ? b.dim(0) : b.dim(1);
      Tensor bias;
      const Tensor* c = f32_constant(g, n, 2);
      if (c && !bias_vector(*c, outputs, beta, bias)) continue;  // a full [M,N] C: left as ONNX has it
      if (alpha != 1.f || !trans_b) {  // weights already [N,K] with alpha 1 are kept, not copied
        Tensor w = trans_b ? b.clone() : transpose_2d(b);
        for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] *= alpha;
        n.inputs[1] = fresh_constant_name(g, n.inputs[1] + "/nk");
        g.constants[n.inputs[1]] = w;
      }
      if (c && (beta != 1.f || c->rank() != 1 || c->numel() != outputs)) {
        n.inputs[2] = fresh_constant_name(g, n.inputs[2] + "/bias");
        g.constants[n.inputs[2]] = bias;
      }
      n.attrs.set("transA", int64_t(0));
      n.attrs.set("transB", int64_t(1));
      n.attrs.set("alpha", 1.f);
      n.attrs.set("beta", 1.f);
    }
  }
  erase_absorbed(g);
}

void fold_batchnorm(Graph& g) {
  for (auto& bn : g.nodes) {
    if (bn.op != "BatchNormalization") continue;
    int p = g.producer(bn.inputs[0]);
    if (p < 0 || sole_consumer(g, bn.inputs[0]) < 0) continue;
    Node& prev = g.nodes[p];
    bool conv = prev.op == "Conv" && f32_constant(g, prev, 1);
    bool gemm = is_canonical_gemm(g, prev) && (prev.inputs.size() < 3 || prev.inputs[2].empty() ||
                                               g.constants.at(prev.inputs[2]).rank() == 1);
    if ((!conv && !gemm) || prev.attrs.has("dnn.activation") || prev.inputs.size() > 3) continue;
    const Tensor *scale = f32_constant(g, bn, 1), *shift = f32_constant(g, bn, 2), *mean = f32_constant(g, bn, 3),
                 *var = f32_constant(g, bn, 4);
    const Tensor& w = g.constants.at(prev.inputs[1]);
    if (w.rank() < 2) continue;
    const int64_t channels = w.dim(0);  // Conv: output channels; canonical Gemm: N
    if (!scale || !shift || !mean || !var) continue;
    if (scale->numel() != channels || shift->numel() != channels || mean->numel() != channels || var->numel() != channels)
      continue;
    const Tensor* b = f32_constant(g, prev, 2);
    if (prev.inputs.size() > 2 && !prev.inputs[2].empty() && (!b || b->numel() != channels)) continue;

    // y = s * (conv(x) + b - mean) + shift with s = scale / sqrt(var + eps): scale W's rows by s.
    const float eps = bn.attrs.f("epsilon", 1e-5f);
    Tensor new_w = w.clone(), new_b({channels});
    const int64_t row = w.numel() / channels;
    for (int64_t c = 0; c < channels; ++c) {
      float s = scale->f32()[c] / std::sqrt(var->f32()[c] + eps);
      for (int64_t k = 0; k < row; ++k) new_w.f32()[c * row + k] *= s;
      new_b.f32()[c] = ((b ? b->f32()[c] : 0.f) - mean->f32()[c]) * s + shift->f32()[c];
    }
    std::string wn = fresh_constant_name(g, prev.name + "/weight_bn"), bname = fresh_constant_name(g, prev.name + "/bias_bn");
    g.constants[wn] = new_w;
    g.constants[bname] = new_b;
    prev.inputs.resize(3);
    prev.inputs[1] = wn, prev.inputs[2] = bname;
    prev.outputs[0] = bn.outputs[0];
    absorb(bn);
  }
  erase_absorbed(g);
}

void fuse_residual_add(Graph& g, const ShapeMap& shapes) {
  for (auto& add : g.nodes) {
    if (add.op != "Add" || add.inputs.size() != 2 || add.inputs[0] == add.inputs[1] || g.is_constant(add.inputs[0]) ||
        g.is_constant(add.inputs[1]))
      continue;
    if (!same_known_shape(shapes, add.inputs[0], add.inputs[1])) continue;  // no broadcasting
    // Prefer the conv computed later, so the skip value already exists when it runs.
    std::vector<int> order = {0, 1};
    if (g.producer(add.inputs[1]) > g.producer(add.inputs[0])) std::swap(order[0], order[1]);
    for (int k : order) {
      int p = g.producer(add.inputs[k]);
      if (p < 0 || sole_consumer(g, add.inputs[k]) < 0) continue;
      Node& conv = g.nodes[p];
      if (conv.op != "Conv" || conv.attrs.has("dnn.activation") || conv.inputs.size() > 3) continue;
      conv.inputs.resize(3);  // [X, W, B or ""]
      conv.inputs.push_back(add.inputs[1 - k]);
      conv.outputs[0] = add.outputs[0];
      absorb(add);
      break;
    }
  }
  erase_absorbed(g);
}

void recognise_hardswish(Graph& g) {
  for (auto& mul : g.nodes) {
    if (mul.op != "Mul" || mul.inputs.size() != 2) continue;
    for (int k : {0, 1}) {
      int h = g.producer(mul.inputs[k]);
      if (h < 0 || sole_consumer(g, mul.inputs[k]) < 0) continue;
      Node& hs = g.nodes[h];
      if (hs.op != "HardSigmoid" || hs.inputs.at(0) != mul.inputs[1 - k]) continue;
      if (std::fabs(hs.attrs.f("alpha", 0.2f) - 1.f / 6) > 1e-6f || hs.attrs.f("beta", 0.5f) != 0.5f) continue;
      mul.op = "HardSwish";
      mul.inputs = {hs.inputs[0]};
      absorb(hs);
      break;
    }
  }
  erase_absorbed(g);
}

void fuse_activation(Graph& g) {
  for (auto& n : g.nodes) {
    if (!has_fuse_role(n.op, kFuseHost) || n.attrs.has("dnn.activation") || n.outputs.empty()) continue;
    int c = sole_consumer(g, n.outputs[0]);
    if (c < 0 || !has_fuse_role(g.nodes[c].op, kFuseActivation) || g.nodes[c].inputs.size() != 1) continue;
    Node& act = g.nodes[c];
    n.attrs.set("dnn.activation", act.op);
    if (act.op == "Clip") {  // canonical Clip carries min and max
      n.attrs.set("dnn.act_min", act.attrs.f("min", std::numeric_limits<float>::lowest()));
      n.attrs.set("dnn.act_max", act.attrs.f("max", std::numeric_limits<float>::max()));
    }
    if (act.op == "LeakyRelu") n.attrs.set("dnn.act_alpha", act.attrs.f("alpha", 0.01f));
    n.outputs[0] = act.outputs[0];
    absorb(act);
  }
  erase_absorbed(g);
}

void finalize(Graph& g) {
  // Dead nodes: walk backwards from the graph outputs.
  std::set<std::string> needed;
  for (auto& o : g.outputs) needed.insert(o.name);
  std::vector<bool> live(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    for (auto& o : g.nodes[i].outputs) live[i] = live[i] || needed.count(o);
    if (live[i]) needed.insert(g.nodes[i].inputs.begin(), g.nodes[i].inputs.end());
  }
  // The passes may have moved a producer after its consumer (a fused residual): sort stably.
  std::map<std::string, int> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (live[i])
      for (auto& o : g.nodes[i].outputs) producer[o] = int(i);
  std::vector<int> pending(g.nodes.size(), 0);
  std::vector<std::vector<int>> readers(g.nodes.size());
  std::set<int> ready;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!live[i]) continue;
    std::set<int> deps;
    for (auto& in : g.nodes[i].inputs) {
      auto it = producer.find(in);
      if (it != producer.end() && it->second != int(i)) deps.insert(it->second);
    }
    pending[i] = int(deps.size());
    for (int d : deps) readers[d].push_back(int(i));
    if (deps.empty()) ready.insert(int(i));
  }
  std::vector<Node> sorted;
  while (!ready.empty()) {
    int i = *ready.begin();
    ready.erase(ready.begin());
    sorted.push_back(std::move(g.nodes[i]));
    for (int r : readers[i])
      if (--pending[r] == 0) ready.insert(r);
  }
  if (sorted.size() != size_t(std::count(live.begin(), live.end(), true)))
    throw ModelError("the graph has a cycle");
  g.nodes = std::move(sorted);

  // Constants nothing reads any more (replaced weights, folded shape operands).
  std::set<std::string> used;
  for (auto& n : g.nodes) used.insert(n.inputs.begin(), n.inputs.end());
  for (auto& o : g.outputs) used.insert(o.name);
  for (auto it = g.constants.begin(); it != g.constants.end();)
    it = used.count(it->first) ? std::next(it) : g.constants.erase(it);
}

}  // namespace dnn
