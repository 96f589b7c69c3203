#include "core/graph.h"

#include <set>

#include "core/error.h"

namespace dnn {

namespace {
template <class T>
const T* get_as(const std::map<std::string, AttrValue>& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return nullptr;
  if (auto p = std::get_if<T>(&it->second)) return p;
  throw ModelError("attribute '" + k + "' has an unexpected type");
}
}  // namespace

int64_t Attrs::i(const std::string& k, int64_t dflt) const {
  auto p = get_as<int64_t>(m_, k);
  return p ? *p : dflt;
}
float Attrs::f(const std::string& k, float dflt) const {
  auto it = m_.find(k);
  if (it != m_.end())
    if (auto p = std::get_if<int64_t>(&it->second)) return static_cast<float>(*p);
  auto p = get_as<float>(m_, k);
  return p ? *p : dflt;
}
std::string Attrs::s(const std::string& k, const std::string& dflt) const {
  auto p = get_as<std::string>(m_, k);
  return p ? *p : dflt;
}
std::vector<int64_t> Attrs::ints(const std::string& k, std::vector<int64_t> dflt) const {
  auto p = get_as<std::vector<int64_t>>(m_, k);
  return p ? *p : dflt;
}
std::vector<float> Attrs::floats(const std::string& k, std::vector<float> dflt) const {
  auto p = get_as<std::vector<float>>(m_, k);
  return p ? *p : dflt;
}

int Graph::producer(const std::string& value) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    for (auto& o : nodes[i].outputs)
      if (o == value) return static_cast<int>(i);
  return -1;
}

void Graph::validate() const {
  std::set<std::string> defined;
  for (auto& v : inputs) defined.insert(v.name);
  for (auto& kv : constants) defined.insert(kv.first);
  for (auto& n : nodes) {
    for (auto& in : n.inputs)
      if (!in.empty() && !defined.count(in))
        throw ModelError(describe(n) + " uses '" + in + "', which is not defined before it");
    for (auto& o : n.outputs)
      if (!defined.insert(o).second) throw ModelError(describe(n) + " redefines value '" + o + "'");
  }
  for (auto& o : outputs)
    if (!defined.count(o.name)) throw ModelError("graph output '" + o.name + "' is never produced");
}

std::vector<std::string> live_values_at(const Graph& g, size_t index) {
  std::set<std::string> produced_before;
  std::vector<std::string> order;
  for (auto& v : g.inputs) {
    produced_before.insert(v.name);
    order.push_back(v.name);
  }
  for (size_t i = 0; i < index && i < g.nodes.size(); ++i)
    for (auto& o : g.nodes[i].outputs) {
      produced_before.insert(o);
      order.push_back(o);
    }
  std::set<std::string> needed;
  for (size_t i = index; i < g.nodes.size(); ++i)
    for (auto& in : g.nodes[i].inputs) needed.insert(in);
  for (auto& o : g.outputs) needed.insert(o.name);
  std::vector<std::string> live;
  for (auto& v : order)
    if (needed.count(v)) live.push_back(v);
  return live;
}

}  // namespace dnn
