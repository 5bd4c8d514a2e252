// Prepares items (batches) on a background thread, a few ahead of the consumer, in order. The consumer
// (the training loop) never waits on batch assembly unless assembly is slower than a training step.
// An exception thrown while making an item is rethrown by next().
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace musicrec::data {

template <typename Item>
class Prefetcher {
 public:
  Prefetcher(int64_t count, std::function<Item(int64_t)> make, size_t depth = 3)
      : count_(count), make_(std::move(make)), depth_(depth), worker_([this] { run(); }) {}
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item in order; false when all `count` items were taken.
  bool next(Item& out) {
    std::unique_lock<std::mutex> l(mu_);
    if (taken_ == count_) return false;
    cv_.wait(l, [&] { return !queue_.empty() || error_; });
    if (queue_.empty() && error_) std::rethrow_exception(error_);
    out = std::move(queue_.front());
    queue_.pop_front();
    ++taken_;
    cv_.notify_all();
    return true;
  }

 private:
  void run() {
    for (int64_t i = 0; i < count_; ++i) {
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || queue_.size() < depth_; });
        if (stop_) return;
      }
      try {
        Item item = make_(i);
        std::lock_guard<std::mutex> l(mu_);
        queue_.push_back(std::move(item));
      } catch (...) {
        std::lock_guard<std::mutex> l(mu_);
        error_ = std::current_exception();
        cv_.notify_all();
        return;
      }
      cv_.notify_all();
    }
  }

  int64_t count_;
  std::function<Item(int64_t)> make_;
  size_t depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  int64_t taken_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread worker_;  // last: starts after every other member exists
};

}  // namespace musicrec::data
