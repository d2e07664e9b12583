// The call handle table: slots never freed, generations bumped per call.
#include "plugin/call_table.h"

#include "common/log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace evh::plugin {

// The handle packs 24 + 40 bits into the pointer's value; it is never
// dereferenced, so any 64-bit platform does.
static_assert(sizeof(evh_call*) == sizeof(uint64_t), "call handles need 64-bit pointers");

const char* callEndText(CallEnd end) noexcept {
  switch (end) {
    case CallEnd::Answered:
      return "handle() had answered";
    case CallEnd::Completed:
      return "already completed";
    case CallEnd::TimedOut:
      return "given up after its timeout_ms";
    case CallEnd::Abandoned:
      return "abandoned at the shutdown deadline";
    case CallEnd::Refused:
      return "never started";
  }
  return "over";
}

// ---------------------------------------------------------------- owner

evh_call* CallOwner::open(CallTarget* target, CallSlot*& slot) {
  if (free_.empty()) {
    slot = CallTable::process().newSlot(*this);
  } else {
    slot = free_.back();
    free_.pop_back();
  }
  // No lock: only this thread writes `generation`, and a stale handle
  // (another generation) never reads `target`.
  slot->target = target;
  return CallTable::encode(slot->index, slot->generation);
}

void CallOwner::endLocked(CallSlot& slot, CallEnd why) noexcept {
  if (slot.target == nullptr) {
    return;
  }
  slot.target = nullptr;
  slot.last_end = why;
  ++slot.generation;
}

void CallOwner::release(CallSlot& slot) noexcept {
  // Only this thread writes `target`: no lock to read it. Calls normally
  // end before they are released.
  if (slot.target != nullptr) {
    std::lock_guard<std::mutex> lock(slot.mutex);
    endLocked(slot, CallEnd::Abandoned);
  }
  // A slot whose generation ran out (2^40 calls) is retired, never reused:
  // its old handles must stay stale.
  if (slot.generation < CallTable::kMaxGeneration) {
    free_.push_back(&slot);  // reserved in newSlot(): cannot throw
  }
}

void CallOwner::noteStale(const char* what, const char* why) noexcept {
  try {
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch());
    uint64_t suppressed = 0;
    {
      std::lock_guard<std::mutex> lock(log_mutex_);
      if (!throttle_.allow(static_cast<uint64_t>(now.count()))) {
        return;
      }
      suppressed = throttle_.suppressed();
    }
    log::host().warn(
        "plugin {}: {}() on a call that is no longer open ({}): answered EVH_ERR_STATE, nothing done -- a call is "
        "over once complete() was accepted, handle() answered anything but PENDING, its timeout_ms passed or the "
        "shutdown deadline came (at most one such line a minute per plugin{})",
        name_, what, why, suppressed == 0 ? std::string() : "; " + std::to_string(suppressed) + " more since the last");
  } catch (...) {  // a lost log line is not worth a crash in a C entry point
  }
}

// ---------------------------------------------------------------- table

CallTable::CallTable() : chunks_(new std::atomic<CallSlot*>[kChunks]) {
  for (size_t i = 0; i < kChunks; ++i) {
    chunks_[i].store(nullptr, std::memory_order_relaxed);
  }
}

CallTable& CallTable::process() {
  // Never destroyed: plugin threads may use handles during static destruction.
  static CallTable* table = new CallTable();
  return *table;
}

evh_call* CallTable::encode(uint32_t index, uint64_t generation) noexcept {
  return reinterpret_cast<evh_call*>(static_cast<uintptr_t>((generation << kIndexBits) | index));
}

CallOwner& CallTable::join(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if ((*it)->name() == name) {
      CallOwner* o = *it;
      idle_.erase(it);
      return *o;
    }
  }
  owners_.push_back(std::unique_ptr<CallOwner>(new CallOwner(name)));
  return *owners_.back();
}

void CallTable::leave(CallOwner& owner) {
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(&owner);
}

CallSlot* CallTable::newSlot(CallOwner& owner) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint32_t index = size_.load(std::memory_order_relaxed);
  if (index >= (uint32_t{1} << kIndexBits)) {
    throw std::length_error("too many plugin calls open at once");
  }
  const size_t chunk = index >> kChunkBits;
  CallSlot* base = chunks_[chunk].load(std::memory_order_relaxed);
  if (base == nullptr) {
    base = new CallSlot[size_t{1} << kChunkBits];
    chunks_[chunk].store(base, std::memory_order_release);
  }
  CallSlot* slot = &base[index & ((1U << kChunkBits) - 1)];
  slot->owner = &owner;
  slot->index = index;
  // Room on the owner's free list for every slot it has: release() never allocates.
  ++owner.owned_;
  if (owner.free_.capacity() < owner.owned_) {
    owner.free_.reserve(std::max(owner.owned_, 2 * owner.free_.capacity()));
  }
  size_.store(index + 1, std::memory_order_release);
  return slot;
}

CallSlot* CallTable::find(evh_call* call, uint64_t& generation) const noexcept {
  const auto value = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(call));
  const auto index = static_cast<uint32_t>(value & ((uint64_t{1} << kIndexBits) - 1));
  generation = value >> kIndexBits;
  if (generation == 0 || index >= size_.load(std::memory_order_acquire)) {
    return nullptr;
  }
  CallSlot* base = chunks_[index >> kChunkBits].load(std::memory_order_acquire);
  return &base[index & ((1U << kChunkBits) - 1)];
}

template <class Act>
evh_status CallTable::use(evh_call* call, const char* what, Act act) {
  uint64_t generation = 0;
  CallSlot* slot = find(call, generation);
  if (slot == nullptr) {
    log::host().error("{}(): {} is no call handle evhost gave out; ignored", what, static_cast<const void*>(call));
    return EVH_ERR_INVALID;
  }
  const char* why = nullptr;
  {
    std::lock_guard<std::mutex> lock(slot->mutex);
    if (slot->generation == generation && slot->target != nullptr) {
      const evh_status s = act(*slot->target);
      if (s != EVH_ERR_STATE) {
        return s;
      }
      why = callEndText(CallEnd::Completed);
    } else {
      why = generation + 1 == slot->generation ? callEndText(slot->last_end) : "long over";
    }
  }
  slot->owner->noteStale(what, why);
  return EVH_ERR_STATE;
}

evh_status CallTable::complete(evh_call* call, evh_status status, std::string_view msg) {
  return use(call, "complete", [&](CallTarget& t) { return t.complete(status, msg); });
}

evh_status CallTable::setError(evh_call* call, std::string_view msg) {
  return use(call, "call_set_error", [&](CallTarget& t) {
    t.setError(msg);
    return EVH_OK;
  });
}

}  // namespace evh::plugin
