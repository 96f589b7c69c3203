// MaxPool/AveragePool on batch > 1 with every geometry option at once, against a direct loop over
// the padded window (PyTorch's definition); global pooling; thread-count determinism.
#include <limits>

#include "layers/layer_test.h"

namespace dnn::test {
namespace {

struct Geometry {
  int64_t k[2], s[2], d[2], pads[4];  // pads: top, left, bottom, right
  bool ceil, include_pad;
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe, bool ceil) {
  const int64_t span = (k - 1) * d + 1, room = in + pb + pe - span;
  int64_t out = (ceil ? (room + s - 1) / s : room / s) + 1;
  if (ceil && (out - 1) * s >= in + pb) --out;
  return out;
}

Tensor reference(const Tensor& x, const Geometry& g, bool max) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = out_size(H, g.k[0], g.s[0], g.d[0], g.pads[0], g.pads[2], g.ceil);
  const int64_t OW = out_size(W, g.k[1], g.s[1], g.d[1], g.pads[1], g.pads[3], g.ceil);
  Tensor y({N, C, OH, OW});
  float* out = y.f32();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          float acc = max ? -std::numeric_limits<float>::infinity() : 0.f;
          int64_t valid = 0, padded = 0;
          for (int64_t i = 0; i < g.k[0]; ++i)
            for (int64_t j = 0; j < g.k[1]; ++j) {
              const int64_t h = oh * g.s[0] - g.pads[0] + i * g.d[0], w = ow * g.s[1] - g.pads[1] + j * g.d[1];
              if (h < H + g.pads[2] && w < W + g.pads[3]) ++padded;
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const float v = x.f32()[((n * C + c) * H + h) * W + w];
              acc = max ? std::max(acc, v) : acc + v;
              ++valid;
            }
          *out++ = max ? acc : acc / (g.include_pad ? padded : valid);
        }
  return y;
}

Node pool_node(const char* op, const Geometry& g) {
  Attrs a;
  a.set("kernel_shape", std::vector<int64_t>{g.k[0], g.k[1]});
  a.set("strides", std::vector<int64_t>{g.s[0], g.s[1]});
  a.set("pads", std::vector<int64_t>(g.pads, g.pads + 4));
  a.set("ceil_mode", int64_t(g.ceil));
  if (std::string(op) == "MaxPool")
    a.set("dilations", std::vector<int64_t>{g.d[0], g.d[1]});
  else
    a.set("count_include_pad", int64_t(g.include_pad));
  return make_node(op, 1, a);
}

TEST(Pool, MatchesDirectLoopsOnBatches) {
  const Geometry geometries[] = {
      {{3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, false, false},  // ResNet's stem pool
      {{3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, true, false},   // SqueezeNet/GoogLeNet ceil_mode
      {{3, 2}, {2, 1}, {1, 1}, {0, 1, 2, 0}, true, true},    // asymmetric pads, ceil, count pads
      {{3, 3}, {1, 2}, {1, 1}, {1, 0, 1, 2}, false, true},
      {{2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, false, false},  // LeNet/VGG
      {{5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, false, true},   // 5 rows: reduced three, then two
      {{7, 3}, {3, 1}, {1, 1}, {3, 1, 3, 1}, false, false},  // 7 rows: three, three, one
      {{1, 3}, {1, 2}, {1, 1}, {0, 1, 0, 1}, false, false},  // one row
      {{1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, false, false},  // the input itself
  };
  Tensor x = random_tensor({3, 4, 11, 10}, 3);
  for (auto& g : geometries) {
    SCOPED_TRACE("kernel " + std::to_string(g.k[0]) + "x" + std::to_string(g.k[1]));
    expect_close(run_unary(pool_node("MaxPool", g), x), reference(x, g, true));
    expect_close(run_unary(pool_node("AveragePool", g), x), reference(x, g, false));
  }
  Geometry dilated = {{3, 2}, {1, 2}, {2, 3}, {2, 1, 1, 2}, true, false};
  expect_close(run_unary(pool_node("MaxPool", dilated), x), reference(x, dilated, true));
}

TEST(Pool, ThreadCountDoesNotChangeTheResult) {
  Geometry g = {{3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, false, false};
  Tensor x = random_tensor({2, 16, 33, 33}, 4);
  expect_identical(run_unary(pool_node("AveragePool", g), x, 1), run_unary(pool_node("AveragePool", g), x, 2));
}

TEST(Pool, CountsOneMacPerWindowElement) {
  Geometry g = {{3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, false, false};
  auto layer = make_layer(pool_node("MaxPool", g), {nullptr});
  EXPECT_EQ(1 * 64 * 56 * 56 * 9, layer->macs({{1, 64, 112, 112}}));
}

TEST(Pool, WindowLargerThanInputIsAShapeError) {
  Geometry g = {{5, 5}, {1, 1}, {1, 1}, {0, 0, 0, 0}, false, false};
  Tensor x({1, 1, 3, 3});
  EXPECT_THROW(run_unary(pool_node("MaxPool", g), x), ShapeError);
}

TEST(Pool, DilatedAveragePoolIsRefused) {
  Geometry g = {{2, 2}, {1, 1}, {2, 2}, {0, 0, 0, 0}, false, false};
  Node n = pool_node("AveragePool", g);
  n.attrs.set("dilations", std::vector<int64_t>{2, 2});
  EXPECT_THROW(make_layer(n, {nullptr}), ModelError);
}

TEST(GlobalPool, AveragesAndMaximaPerPlaneOnBatches) {
  Tensor x = random_tensor({3, 5, 7, 6}, 9);
  Tensor avg({3, 5, 1, 1}), mx({3, 5, 1, 1});
  for (int64_t p = 0; p < 15; ++p) {
    double sum = 0;
    float m = -1e30f;
    for (int64_t i = 0; i < 42; ++i) sum += x.f32()[p * 42 + i], m = std::max(m, x.f32()[p * 42 + i]);
    avg.f32()[p] = static_cast<float>(sum / 42);
    mx.f32()[p] = m;
  }
  expect_close(run_unary(make_node("GlobalAveragePool", 1), x), avg);
  expect_close(run_unary(make_node("GlobalMaxPool", 1), x), mx);
}

}  // namespace
}  // namespace dnn::test
