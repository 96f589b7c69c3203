#include "core/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace dnn {

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string to_string(const Shape& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? "," : "") << s[i];
  o << ']';
  return o.str();
}

size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }

namespace {

// Large buffers (activations of 64 KB and more) are mapped straight from the kernel and recycled.
// Freed ones go back to the OS, not to glibc's heap: there, freed activations were measured to pile
// up frame after frame (a VGG16 stage of 4 MB of weights peaked at 133 MB). Frames repeat the same
// shapes, so a free list serves nearly every request without page faults: fresh pages cost a fault
// and a zeroing each, and MobileNetV2 spent 30 % of its time in them when only one buffer was kept.
// What the list holds is bounded by a limit; the oldest buffers are unmapped first.
class LargeBufferCache {
 public:
  static constexpr size_t kMinBytes = size_t(64) << 10;

  // A buffer of at least `bytes`: the smallest cached one up to 4x that size (a frame's later,
  // smaller activations reuse the pages of its early, larger ones), else a fresh mapping.
  // `mapped` is its real size, `fresh` whether it is new (zero-filled).
  void* get(size_t bytes, size_t& mapped, bool& fresh) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      // Newest first among equals: the most recently freed buffer is the likeliest still in cache.
      auto best = free_.end();
      for (auto it = free_.end(); it != free_.begin();) {
        --it;
        if (it->bytes >= bytes && it->bytes <= 4 * bytes && (best == free_.end() || it->bytes < best->bytes)) best = it;
      }
      if (best != free_.end()) {
        void* p = best->p;
        mapped = best->bytes;
        cached_ -= mapped;
        free_.erase(best);
        fresh = false;
        return p;
      }
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mapped = bytes;
    fresh = true;  // the kernel hands out zeroed pages
    return p;
  }

  void put(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lk(mu_);
    free_.push_back({p, bytes});
    cached_ += bytes;
    shrink_to(limit_);
  }

  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lk(mu_);
    limit_ = bytes;
    shrink_to(limit_);
  }

 private:
  void shrink_to(size_t bytes) {
    while (cached_ > bytes) {
      ::munmap(free_.front().p, free_.front().bytes);
      cached_ -= free_.front().bytes;
      free_.pop_front();
    }
  }

  struct Buffer {
    void* p;
    size_t bytes;
  };
  std::mutex mu_;
  std::deque<Buffer> free_;  // oldest first
  size_t cached_ = 0;
  size_t limit_ = 0;  // no reuse while a model is loading: its temporary copies are not needed again
};

LargeBufferCache& large_buffers() {
  static auto* cache = new LargeBufferCache;  // never destroyed: tensors may outlive static teardown
  return *cache;
}

}  // namespace

void set_buffer_cache_limit(size_t bytes) { large_buffers().set_limit(bytes); }

std::shared_ptr<void> aligned_alloc_shared(size_t bytes, bool zero) {
  // Round up: aligned_alloc wants a multiple of the alignment; +64 gives kernels read slack.
  size_t n = (bytes + 64 + 63) / 64 * 64;
  if (n >= LargeBufferCache::kMinBytes) {
    n = (n + 4095) / 4096 * 4096;
    size_t mapped;
    bool fresh;
    void* p = large_buffers().get(n, mapped, fresh);
    if (zero && !fresh) std::memset(p, 0, n);
    return std::shared_ptr<void>(p, [mapped](void* q) { large_buffers().put(q, mapped); });
  }
  void* p = std::aligned_alloc(64, n);
  if (!p) throw std::bad_alloc();
  if (zero) std::memset(p, 0, n);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  for (int64_t d : shape_)
    if (d < 0) throw ShapeError("tensor dimension is negative: " + to_string(shape_));
  owner_ = aligned_alloc_shared(bytes());
  data_ = owner_.get();
}

Tensor Tensor::uninitialized(Shape shape, DType dtype) {
  for (int64_t d : shape)
    if (d < 0) throw ShapeError("tensor dimension is negative: " + to_string(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.owner_ = aligned_alloc_shared(t.bytes(), false);
  t.data_ = t.owner_.get();
  return t;
}

Tensor Tensor::wrap(Shape shape, DType dtype, void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.data_ = data;
  t.owner_ = std::move(owner);
  t.wrapped_ = true;
  return t;
}

Tensor Tensor::from_f32(Shape shape, const std::vector<float>& values) {
  Tensor t(std::move(shape), DType::f32);
  if (static_cast<int64_t>(values.size()) != t.numel()) throw ShapeError("from_f32: value count does not match shape");
  std::memcpy(t.data_, values.data(), t.bytes());
  return t;
}

Tensor Tensor::from_i64(Shape shape, const std::vector<int64_t>& values) {
  Tensor t(std::move(shape), DType::i64);
  if (static_cast<int64_t>(values.size()) != t.numel()) throw ShapeError("from_i64: value count does not match shape");
  std::memcpy(t.data_, values.data(), t.bytes());
  return t;
}

float* Tensor::f32() {
  if (dtype_ != DType::f32) throw Error("tensor is not float32");
  return static_cast<float*>(data_);
}
const float* Tensor::f32() const { return const_cast<Tensor*>(this)->f32(); }
int64_t* Tensor::i64() {
  if (dtype_ != DType::i64) throw Error("tensor is not int64");
  return static_cast<int64_t*>(data_);
}
const int64_t* Tensor::i64() const { return const_cast<Tensor*>(this)->i64(); }

Tensor Tensor::reshaped(Shape shape) const {
  if (dnn::numel(shape) != numel())
    throw ShapeError("cannot reshape " + to_string(shape_) + " to " + to_string(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(shape_, dtype_);
  if (bytes()) std::memcpy(t.data_, data_, bytes());
  return t;
}

std::vector<int64_t> Tensor::to_i64_vector() const {
  std::vector<int64_t> v(numel());
  for (int64_t i = 0; i < numel(); ++i)
    v[i] = dtype_ == DType::i64 ? i64()[i] : static_cast<int64_t>(f32()[i]);
  return v;
}

}  // namespace dnn
