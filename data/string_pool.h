// Interns strings to dense int32 codes in first-seen order. Codes are stable; lookups take a
// string_view, so a reader can intern fields straight from its line buffer.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace musicrec::data {

class StringPool {
 public:
  int32_t intern(std::string_view s) {
    auto it = index_.find(s);
    if (it != index_.end()) return it->second;
    strings_.emplace_back(s);
    int32_t code = static_cast<int32_t>(strings_.size() - 1);
    index_.emplace(std::string_view(strings_.back()), code);
    return code;
  }
  int32_t find(std::string_view s) const {  // -1 when absent
    auto it = index_.find(s);
    return it == index_.end() ? -1 : it->second;
  }
  const std::string& str(int32_t code) const { return strings_[static_cast<size_t>(code)]; }
  int32_t size() const { return static_cast<int32_t>(strings_.size()); }
  void reserve(size_t n) { index_.reserve(n); }

 private:
  std::deque<std::string> strings_;  // deque: views into its strings stay valid as it grows
  std::unordered_map<std::string_view, int32_t> index_;
};

}  // namespace musicrec::data
