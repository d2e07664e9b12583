// Reading a struct_size-prefixed ABI struct from the other side of the boundary.
#pragma once

#include <cstdint>
#include <cstring>

namespace evh::plugin {

// Copies a struct whose first member is `uint32_t struct_size` from `src`
// into a zeroed T, reading min(src->struct_size, sizeof(T)) bytes and never
// more: fields the other side did not compile (an older minor) stay zero,
// and fields it has that we lack (a newer minor) are ignored. Returns the
// size the other side declared.
template <class T>
uint32_t copyVersioned(const void* src, T& dst) noexcept {
  uint32_t declared = 0;
  std::memcpy(&declared, src, sizeof(declared));
  dst = T{};
  std::memcpy(static_cast<void*>(&dst), src, declared < sizeof(T) ? declared : sizeof(T));
  dst.struct_size = declared;
  return declared;
}

}  // namespace evh::plugin
