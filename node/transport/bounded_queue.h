// A bounded multi-producer multi-consumer queue. The MQTT callback thread uses try_push() only (it
// must never block); workers use push()/pop_for(). close() wakes everyone: pushes then fail and pops
// drain what is left, then return nothing.
#pragma once
#include <chrono>
#include <cstddef>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace dnn {

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}

  size_t capacity() const { return capacity_; }
  size_t size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return items_.size();
  }

  // Never blocks: false when full or closed.
  bool try_push(T item) {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_ || items_.size() >= capacity_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // Never blocks: an urgent item goes ahead of the ordinary ones (after earlier urgent ones), into
  // `reserve` places of its own beyond the capacity, so a queue full of bulk cannot refuse it.
  bool try_push_urgent(T item, size_t reserve) {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_ || items_.size() >= capacity_ + reserve) return false;
    items_.insert(items_.begin() + static_cast<std::ptrdiff_t>(urgent_), std::move(item));
    ++urgent_;
    not_empty_.notify_one();
    return true;
  }

  // Waits for space; false when the queue was closed.
  bool push(T item) {
    std::unique_lock<std::mutex> lk(mu_);
    not_full_.wait(lk, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // The oldest item, or nothing after `timeout` (or once closed and empty).
  std::optional<T> pop_for(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lk(mu_);
    if (!not_empty_.wait_for(lk, timeout, [&] { return closed_ || !items_.empty(); })) return std::nullopt;
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    if (urgent_ > 0) --urgent_;
    not_full_.notify_one();
    return item;
  }

  void close() {
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  bool closed() const {
    std::lock_guard<std::mutex> lk(mu_);
    return closed_;
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> items_;
  size_t urgent_ = 0;   // the first items_ that came through try_push_urgent
  bool closed_ = false;
};

}  // namespace dnn
