// Gemm (Y = alpha * A' * B' + beta * C, A' = transA ? A^T : A, B' = transB ? B^T : B) and MatMul
// (NumPy matmul: 1-D operands, batched and broadcast leading dimensions), with the fused activation
// from the dnn.activation attributes.
//
// The common case — weights as a constant B, a fully-connected layer — runs on the streaming
// FullyConnected kernel with alpha and a vector C folded in at load; the weights are not kept in
// their original form (the kernel transposes them, in place where it can). Anything else (B an activation, batched MatMul) packs both operands per call.
#include <cmath>
#include <memory>

#include "kernels/fully_connected.h"
#include "kernels/gemm.h"
#include "layers/layer.h"

namespace dnn {
namespace {

// Y (M x N) = alpha * op(A) * op(B), A stored (trans_a ? K x M : M x K), B stored (trans_b ? N x K : K x N).
void product(const float* a, bool trans_a, const float* b, bool trans_b, int64_t M, int64_t K, int64_t N,
             float alpha, float* y, ThreadPool& pool) {
  const kernels::MatrixPacker B(b, trans_b ? 1 : N, trans_b ? K : 1);
  kernels::gemm(a, trans_a ? 1 : K, trans_a ? M : 1, alpha, B, M, K, N, y, N, kernels::Epilogue{}, pool);
}

class GemmLayer : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    const Attrs& at = node.attrs;
    matmul_ = node.op == "MatMul";
    if (node.inputs.size() < 2) throw ModelError(node.op + " needs two inputs");
    if (!matmul_) {
      alpha_ = at.f("alpha", 1.f);
      beta_ = at.f("beta", 1.f);
      trans_a_ = at.i("transA", 0) != 0;
      trans_b_ = at.i("transB", 0) != 0;
    }
    act_ = kernels::make_activation(at.s("dnn.activation", ""), at.f("dnn.act_min", -INFINITY),
                                    at.f("dnn.act_max", INFINITY), at.f("dnn.act_alpha", 0.01f));
    if (consts[0]) a_const_ = *consts[0];
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      if (matmul_) throw ModelError("MatMul takes two inputs");
      has_c_ = true;
      if (consts[2]) c_const_ = *consts[2];
    }
    const Tensor* b = consts[1];
    if (!matmul_ && ((a_const_.empty() ? 2 : a_const_.rank()) != 2 || (b && b->rank() != 2)))
      throw ModelError("Gemm operands must be 2-D");
    if (!b || b->rank() != 2 || !a_const_.empty()) {
      if (b) b_const_ = *b;
      act_after_ = true;
      return;  // general product at run time
    }
    // Weights: w(o, k) = op(B)[k][o].
    const int64_t K = trans_b_ ? b->dim(1) : b->dim(0), N = trans_b_ ? b->dim(0) : b->dim(1);
    weight_shape_ = b->shape();
    std::vector<float> bias;
    bool fuse = true;  // bias and activation inside the kernel
    if (has_c_ && !c_const_.empty() && beta_ != 0.f) {
      const Tensor& c = c_const_;
      const bool row = c.numel() == N && (c.rank() == 1 || (c.rank() == 2 && c.dim(0) == 1));
      if (row || c.numel() == 1) {
        bias.resize(N);
        for (int64_t o = 0; o < N; ++o) bias[o] = beta_ * c.f32()[row ? o : 0];
        c_const_ = Tensor();
        has_c_ = false;
      } else {
        fuse = false;  // a per-row or full C is added after the product
      }
    } else if (has_c_ && !c_const_.empty()) {
      c_const_ = Tensor();  // beta == 0: C does not contribute
      has_c_ = false;
    } else if (has_c_) {
      fuse = false;  // C is an activation
    }
    const float* bias_ptr = bias.empty() ? nullptr : bias.data();
    const kernels::Activation fused = fuse ? act_ : kernels::Activation{};
    if (trans_b_ && alpha_ == 1.f)  // already the kernel's layout: share the weights, no copy
      fc_ = std::make_unique<kernels::FullyConnected>(*b, bias_ptr, fused);
    else
      fc_ = std::make_unique<kernels::FullyConnected>(b->f32(), N, K, trans_b_ ? K : 1, trans_b_ ? 1 : N, alpha_,
                                                      bias_ptr, fused);
    act_after_ = !fuse;
  }

  // The loader has let go of the weights by now: the kernel may take them over in place.
  void prepare(const std::vector<Shape>&) override {
    if (fc_) fc_->prepare();
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    Shape a = a_const_.empty() ? in.at(0) : a_const_.shape();
    Shape b = fc_ ? weight_shape_ : (b_const_.empty() ? in.at(1) : b_const_.shape());
    if (!matmul_) {
      if (a.size() != 2 || b.size() != 2) throw ShapeError(where_ + ": Gemm operands must be 2-D");
      const int64_t M = trans_a_ ? a[1] : a[0], K = trans_a_ ? a[0] : a[1];
      const int64_t Kb = trans_b_ ? b[1] : b[0], N = trans_b_ ? b[0] : b[1];
      if (K != Kb) throw ShapeError(where_ + ": inner dimensions differ: " + to_string(a) + " x " + to_string(b));
      return {{M, N}};
    }
    if (a.empty() || b.empty()) throw ShapeError(where_ + ": MatMul of a scalar");
    const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
    if (a_vec) a.insert(a.begin(), 1);
    if (b_vec) b.push_back(1);
    if (a.back() != b[b.size() - 2])
      throw ShapeError(where_ + ": inner dimensions differ: " + to_string(a) + " x " + to_string(b));
    Shape out = broadcast_batch(a, b, where_);
    if (!a_vec) out.push_back(a[a.size() - 2]);
    if (!b_vec) out.push_back(b.back());
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Tensor& a = a_const_.empty() ? *in.at(0) : a_const_;
    std::vector<Shape> shapes = {a.shape()};
    if (!fc_) shapes.push_back(b_const_.empty() ? in.at(1)->shape() : b_const_.shape());
    auto y = Tensor::uninitialized(output_shapes(shapes)[0]);
    if (fc_) {
      const int64_t K = fc_->in_features(), rows = a.numel() / K;
      if (trans_a_) {
        Tensor t({rows, K});
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t k = 0; k < K; ++k) t.f32()[i * K + k] = a.f32()[k * rows + i];
        fc_->forward(t.f32(), rows, y.f32(), *ctx.pool);
      } else {
        fc_->forward(a.f32(), rows, y.f32(), *ctx.pool);
      }
    } else if (matmul_) {
      batched_matmul(a, b_const_.empty() ? *in.at(1) : b_const_, y, *ctx.pool);
    } else {
      const Tensor& b = b_const_.empty() ? *in.at(1) : b_const_;
      product(a.f32(), trans_a_, b.f32(), trans_b_, y.dim(0), trans_a_ ? a.dim(0) : a.dim(1), y.dim(1), alpha_,
              y.f32(), *ctx.pool);
    }
    if (has_c_) add_c(c_const_.empty() ? *in.at(2) : c_const_, y);
    if (act_after_)
      for (int64_t i = 0, rows = y.numel() / y.dim(-1); i < rows; ++i)
        kernels::finish_row(y.f32() + i * y.dim(-1), y.dim(-1), 0.f, nullptr, act_);
    return {y};
  }

  int64_t macs(const std::vector<Shape>& in) const override {
    std::vector<Shape> shapes = {a_const_.empty() ? in.at(0) : a_const_.shape()};
    if (!fc_) shapes.push_back(b_const_.empty() ? in.at(1) : b_const_.shape());
    const Shape out = output_shapes(shapes)[0];
    const Shape& a = shapes[0];
    const int64_t K = matmul_ ? a.back() : (trans_a_ ? a[0] : a[1]);
    return numel(out) * K;
  }

 private:
  // The broadcast leading (batch) dimensions of two matmul operands of rank >= 2.
  static Shape broadcast_batch(const Shape& a, const Shape& b, const std::string& where) {
    const size_t ra = a.size() - 2, rb = b.size() - 2, r = std::max(ra, rb);
    Shape out(r);
    for (size_t i = 0; i < r; ++i) {
      const int64_t da = i + ra >= r ? a[i + ra - r] : 1, db = i + rb >= r ? b[i + rb - r] : 1;
      if (da != db && da != 1 && db != 1)
        throw ShapeError(where + ": batch dimensions do not broadcast: " + to_string(a) + " x " + to_string(b));
      out[i] = std::max(da, db);
    }
    return out;
  }

  void batched_matmul(const Tensor& at, const Tensor& bt, Tensor& y, ThreadPool& pool) const {
    Shape a = at.shape(), b = bt.shape();
    if (a.size() == 1) a.insert(a.begin(), 1);
    if (b.size() == 1) b.push_back(1);
    const int64_t M = a[a.size() - 2], K = a.back(), N = b.back();
    const Shape batch = broadcast_batch(a, b, where_);
    const size_t r = batch.size(), ra = a.size() - 2, rb = b.size() - 2;
    for (int64_t i = 0, n = numel(batch); i < n; ++i) {
      // Offsets of this batch element in a and b, broadcast dimensions contributing nothing.
      int64_t rem = i, oa = 0, ob = 0, sa = M * K, sb = K * N;
      for (size_t d = r; d-- > 0;) {
        const int64_t idx = rem % batch[d];
        rem /= batch[d];
        if (d + ra >= r) {
          const int64_t da = a[d + ra - r];
          if (da != 1) oa += idx * sa;
          sa *= da;
        }
        if (d + rb >= r) {
          const int64_t db = b[d + rb - r];
          if (db != 1) ob += idx * sb;
          sb *= db;
        }
      }
      product(at.f32() + oa, false, bt.f32() + ob, false, M, K, N, 1.f, y.f32() + i * M * N, pool);
    }
  }

  // y (M x N) += beta * C, C broadcast from (M or 1, N or 1).
  void add_c(const Tensor& c, Tensor& y) const {
    const int64_t M = y.dim(0), N = y.dim(1);
    const int64_t cm = c.rank() == 2 ? c.dim(0) : 1, cn = c.rank() >= 1 ? c.dim(-1) : 1;
    if (c.rank() > 2 || (cm != 1 && cm != M) || (cn != 1 && cn != N))
      throw ShapeError(where_ + ": C " + to_string(c.shape()) + " does not broadcast to " + to_string(y.shape()));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) y.f32()[i * N + j] += beta_ * c.f32()[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
  }

  bool matmul_ = false, trans_a_ = false, trans_b_ = false, has_c_ = false, act_after_ = false;
  float alpha_ = 1.f, beta_ = 1.f;
  kernels::Activation act_;
  Tensor a_const_, b_const_, c_const_;  // constant operands of the general path (shared storage)
  Shape weight_shape_;                  // B's shape when it was packed into fc_
  std::unique_ptr<kernels::FullyConnected> fc_;
};

}  // namespace

std::unique_ptr<Layer> make_gemm_layer() { return std::make_unique<GemmLayer>(); }

}  // namespace dnn
