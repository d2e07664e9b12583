// product_args: a command's arguments -- the apply script's KEYS or ARGV --
// in one buffer, handed to the host as evh_str views.
//
// Why: a batch of 64 events carries some 2,600 arguments. Kept as a
// std::string each they were built, moved into place, pointed at twice more
// (string_view, then evh_str) and freed one by one: 12-15 % of evhost's
// instructions per event in the durable JollyJet drain (2026-12-07). Here an
// argument is its bytes appended to one buffer and its end offset.
#pragma once

#include <evh/plugin.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace product {

class Args {
 public:
  // Room for `count` more arguments of `bytes` in all.
  void reserve(size_t count, size_t bytes) {
    ends_.reserve(ends_.size() + count);
    room(bytes);
  }

  // One whole argument.
  void add(std::string_view a) {
    append(a);
    end();
  }
  // A number as its decimal text.
  void add(int64_t n) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, n);
    add(std::string_view(digits, static_cast<size_t>(r.ptr - digits)));
  }
  void add(size_t n) { add(static_cast<int64_t>(n)); }

  // An argument in pieces: append() them, then end() it.
  void append(std::string_view piece) {
    room(piece.size());
    if (!piece.empty()) {
      std::memcpy(text_.get() + size_, piece.data(), piece.size());
      size_ += piece.size();
    }
  }
  void end() { ends_.push_back(size_); }

  size_t size() const noexcept { return ends_.size(); }

  // Appends a view of each argument to `out`: valid while nothing is added.
  void views(std::vector<evh_str>& out) const {
    size_t from = 0;
    for (size_t end : ends_) {
      out.push_back(evh_str{text_.get() + from, end - from});
      from = end;
    }
  }

 private:
  // Room for `more` bytes. A buffer of its own rather than a std::string:
  // std::string::append is a call into libstdc++ with its checks for each of
  // the ~40 arguments an event, and growing one zero-fills nothing here.
  void room(size_t more) {
    if (more <= capacity_ - size_) {
      return;
    }
    const size_t capacity = std::max({capacity_ * 2, size_ + more, size_t{1024}});
    std::unique_ptr<char[]> grown(new char[capacity]);
    if (size_ > 0) {
      std::memcpy(grown.get(), text_.get(), size_);
    }
    text_ = std::move(grown);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> text_;
  size_t size_ = 0;
  size_t capacity_ = 0;
  std::vector<size_t> ends_;
};

}  // namespace product
