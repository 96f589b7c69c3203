// The model graph every part of dnnswarm shares: the ONNX importer and the .dnns reader produce it,
// the engine runs any contiguous range of its nodes, the planner cuts it into stages and shards.
//
// Values are named. A node input names a graph input, an earlier node's output, or a constant (an
// initializer: weights, biases, folded shape constants). Nodes are stored in topological order and
// constant-only subgraphs are already folded away, so every node does real work on activations.
#pragma once
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace dnn {

using AttrValue = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>>;

class Attrs {
 public:
  bool has(const std::string& k) const { return m_.count(k) != 0; }
  void set(const std::string& k, AttrValue v) { m_[k] = std::move(v); }
  int64_t i(const std::string& k, int64_t dflt) const;
  float f(const std::string& k, float dflt) const;
  std::string s(const std::string& k, const std::string& dflt) const;
  std::vector<int64_t> ints(const std::string& k, std::vector<int64_t> dflt = {}) const;
  std::vector<float> floats(const std::string& k, std::vector<float> dflt = {}) const;
  const std::map<std::string, AttrValue>& all() const { return m_; }

 private:
  std::map<std::string, AttrValue> m_;
};

struct Node {
  std::string name;                  // unique, for messages ("node 'conv1' (Conv)")
  std::string op;                    // ONNX operator name: "Conv", "Gemm", "Relu", ...
  std::vector<std::string> inputs;   // value names; "" marks an omitted optional input
  std::vector<std::string> outputs;
  Attrs attrs;
};

struct ValueInfo {
  std::string name;
  Shape shape;  // -1 for a dimension only known at run time (usually the batch)
};

struct Graph {
  std::string name;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;                   // topological order
  std::map<std::string, Tensor> constants;   // initializers and folded constants

  bool is_constant(const std::string& v) const { return constants.count(v) != 0; }
  // Index of the node producing `value`, or -1 for graph inputs and constants.
  int producer(const std::string& value) const;
  // Checks names are defined before use and outputs are unique; throws ModelError naming the node.
  void validate() const;
  std::string describe(const Node& n) const { return "node '" + n.name + "' (" + n.op + ")"; }
};

// The activations that cross a cut placed before node `index`: values produced by nodes before it
// (or graph inputs) and consumed at or after it, plus graph outputs already produced. In graph order.
std::vector<std::string> live_values_at(const Graph& g, size_t index);

}  // namespace dnn
