// RAII ownership of libuv handles, which must outlive uv_close().
#pragma once

#include <uv.h>

#include <utility>

namespace evh {

// Owns a heap-allocated uv handle of type T. The handle is freed in the close
// callback, never before, as libuv requires. Construct only after uv_*_init
// returned 0.
template <class T>
class UvHandle {
 public:
  UvHandle() = default;
  explicit UvHandle(T* h) noexcept : h_(h) {}
  ~UvHandle() { close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }

  T* get() const noexcept { return h_; }
  T* operator->() const noexcept { return h_; }
  explicit operator bool() const noexcept { return h_ != nullptr; }

  void close() noexcept {
    if (h_ == nullptr) {
      return;
    }
    auto* h = reinterpret_cast<uv_handle_t*>(std::exchange(h_, nullptr));
    if (uv_is_closing(h) == 0) {
      uv_close(h, [](uv_handle_t* p) { delete reinterpret_cast<T*>(p); });
    }
  }

 private:
  T* h_ = nullptr;
};

// Allocates and initialises a handle with init(loop, h, args...); returns an
// empty UvHandle if init fails (the raw memory is freed at once, since libuv
// never saw a valid handle).
template <class T, class Init, class... Args>
UvHandle<T> makeUvHandle(uv_loop_t* loop, Init init, Args&&... args) {
  auto* h = new T();
  if (init(loop, h, std::forward<Args>(args)...) != 0) {
    delete h;
    return UvHandle<T>();
  }
  return UvHandle<T>(h);
}

}  // namespace evh
