// The wall clock and its ISO-8601 form: one definition for every timestamp evhost writes (dead letters, gap reports,
// trimming by age, evhctl publish).
#pragma once

#include <cstdint>
#include <string>

namespace evh {

// Milliseconds since the Unix epoch (the system clock: it may step).
uint64_t wallMs();

// ISO-8601 UTC with milliseconds, e.g. 2026-11-26T18:00:03.010Z.
std::string isoTime(uint64_t epoch_ms);

}  // namespace evh
