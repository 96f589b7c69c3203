#include "support/fixtures.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <sys/wait.h>

namespace dnn::test {

::testing::AssertionResult close_to_reference(const Tensor& y, const Tensor& ref, double rel, double abs) {
  if (y.shape() != ref.shape())
    return ::testing::AssertionFailure() << "shape " << to_string(y.shape()) << " != reference " << to_string(ref.shape());
  double max_ref = 0, worst = 0;
  int64_t worst_i = -1;
  for (int64_t i = 0; i < ref.numel(); ++i) max_ref = std::max(max_ref, std::fabs(double(ref.f32()[i])));
  const double tol = rel * max_ref + abs;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    double d = std::fabs(double(y.f32()[i]) - ref.f32()[i]);
    if (!(d <= worst)) {  // also catches NaN
      worst = std::isnan(d) ? INFINITY : d;
      worst_i = i;
    }
  }
  if (worst <= tol) return ::testing::AssertionSuccess() << "max |diff| " << worst << " <= " << tol;
  return ::testing::AssertionFailure() << "max |diff| " << worst << " at " << worst_i << " (y=" << y.f32()[worst_i]
                                       << ", ref=" << ref.f32()[worst_i] << ") exceeds " << tol;
}

int run_cli(const std::string& args, std::string* out) {
  std::string cmd = std::string(DNN_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  std::string text;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
  int status = pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace dnn::test
