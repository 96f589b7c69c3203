// A dense N-dimensional tensor: a shape, a dtype and a reference-counted, 64-byte aligned buffer.
// Copies share storage (like a view); clone() copies the bytes. Layout is row-major (NCHW for images).
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace dnn {

using Shape = std::vector<int64_t>;

enum class DType : uint8_t { f32 = 0, i64 = 1 };

int64_t numel(const Shape& s);
std::string to_string(const Shape& s);
size_t dtype_size(DType t);

class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-filled, 64-byte aligned storage.
  explicit Tensor(Shape shape, DType dtype = DType::f32);
  // Allocates without zero-filling: for layer outputs whose every element the layer writes (the
  // fill costs 5-10 % of a convolutional network's time).
  static Tensor uninitialized(Shape shape, DType dtype = DType::f32);
  // Wraps memory owned elsewhere; `owner` keeps it alive (e.g. a mapped file or a message buffer).
  static Tensor wrap(Shape shape, DType dtype, void* data, std::shared_ptr<void> owner);
  static Tensor from_f32(Shape shape, const std::vector<float>& values);
  static Tensor from_i64(Shape shape, const std::vector<int64_t>& values);

  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int rank() const { return static_cast<int>(shape_.size()); }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return dnn::numel(shape_); }
  size_t bytes() const { return numel() * dtype_size(dtype_); }
  bool empty() const { return data_ == nullptr; }

  float* f32();
  const float* f32() const;
  int64_t* i64();
  const int64_t* i64() const;
  void* raw() { return data_; }
  const void* raw() const { return data_; }

  // Whether this is the only tensor on storage of its own (allocated, not wrapped; no other copy or
  // view), so that it may be rewritten in place.
  bool sole_owner() const { return !wrapped_ && owner_ && owner_.use_count() == 1; }
  // Same storage, new shape with the same number of elements.
  Tensor reshaped(Shape shape) const;
  Tensor clone() const;
  // Values as int64 whatever the dtype (for shape constants).
  std::vector<int64_t> to_i64_vector() const;

 private:
  Shape shape_;
  DType dtype_ = DType::f32;
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  bool wrapped_ = false;  // memory owned elsewhere (wrap())
};

// 64-byte aligned allocation with a deleter, for kernels' own packed buffers; zero-filled unless
// `zero` is false.
std::shared_ptr<void> aligned_alloc_shared(size_t bytes, bool zero = true);

// Freed large buffers (activations) are kept for reuse, up to this many bytes: the next frame then
// finds them without page faults. The limit starts at 0 (a model being loaded frees copies that are
// not needed again); an Executor sets it when built (ExecOptions::buffer_cache_bytes).
void set_buffer_cache_limit(size_t bytes);

}  // namespace dnn
