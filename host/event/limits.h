// The largest decoder limits evhost supports: one source of truth for the decoder (which refuses more) and the config
// loader (which refuses more with file:line, so that --check-config and --config agree).
#pragma once

#include <cstddef>

namespace evh::event {

// Bounds the decoder's recursion (stack), one frame per nesting level.
inline constexpr size_t kMaxSupportedJsonDepth = 1024;
// Keeps every offset into a message within 32 bits (Event's spans).
inline constexpr size_t kMaxSupportedMessageBytes = size_t{1} << 31;

}  // namespace evh::event
