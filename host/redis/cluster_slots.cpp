// Hash slots, redirects and the slot map of Redis Cluster (cluster_slots.h).
#include "redis/cluster_slots.h"

#include <algorithm>
#include <array>

namespace evh::redis {
namespace {

// CRC16-CCITT as the cluster specification defines it (XMODEM: polynomial
// 0x1021, initial value 0, no reflection, no final xor), a byte at a time
// from a table the compiler computes: entry b is the CRC of the byte b
// shifted through the high end of the register.
constexpr std::array<uint16_t, 256> crcTable() {
  std::array<uint16_t, 256> table{};
  for (unsigned b = 0; b < 256; ++b) {
    unsigned crc = b << 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000U) != 0 ? (crc << 1) ^ 0x1021U : crc << 1;
    }
    table[b] = static_cast<uint16_t>(crc & 0xFFFFU);
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrcTable = crcTable();

uint16_t crc16(std::string_view bytes) noexcept {
  unsigned crc = 0;
  for (unsigned char c : bytes) {
    crc = ((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xFFU]) & 0xFFFFU;
  }
  return static_cast<uint16_t>(crc);
}

// Up to `max_digits` decimal digits and nothing else; false on anything
// else (empty, a sign, a space), so that an overflow cannot happen.
bool decimal(std::string_view text, size_t max_digits, uint32_t& out) {
  if (text.empty() || text.size() > max_digits) {
    return false;
  }
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  out = value;
  return true;
}

}  // namespace

uint16_t keySlot(std::string_view key) noexcept {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<uint16_t>(crc16(key) % kClusterSlots);
}

std::optional<Redirect> parseRedirect(std::string_view error) {
  Redirect r;
  std::string_view rest;
  if (error.substr(0, 6) == "MOVED ") {
    r.kind = Redirect::Moved;
    rest = error.substr(6);
  } else if (error.substr(0, 4) == "ASK ") {
    r.kind = Redirect::Ask;
    rest = error.substr(4);
  } else {
    return std::nullopt;
  }
  const size_t space = rest.find(' ');
  uint32_t slot = 0;
  if (space == std::string_view::npos || !decimal(rest.substr(0, space), 5, slot) || slot >= kClusterSlots) {
    return std::nullopt;
  }
  r.slot = static_cast<uint16_t>(slot);
  const std::string_view address = rest.substr(space + 1);
  for (char c : address) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7F) {
      return std::nullopt;  // a second space, a newline, a control byte: not what Redis sends
    }
  }
  const size_t colon = address.rfind(':');
  uint32_t port = 0;
  if (colon == std::string_view::npos || !decimal(address.substr(colon + 1), 5, port) || port == 0 || port > 65535) {
    return std::nullopt;
  }
  std::string_view host = address.substr(0, colon);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      return std::nullopt;
    }
    host = host.substr(1, host.size() - 2);
  }
  if (host.find_first_of("[]") != std::string_view::npos) {
    return std::nullopt;
  }
  r.to = Address{std::string(host), static_cast<uint16_t>(port)};
  return r;
}

SlotMap::SlotMap() : owner_(kClusterSlots, kNoOwner) {}

const SlotMap::Node* SlotMap::masterFor(uint16_t slot) const noexcept {
  if (slot >= kClusterSlots || owner_[slot] == kNoOwner) {
    return nullptr;
  }
  return &nodes_[owner_[slot]];
}

bool SlotMap::complete() const noexcept {
  for (uint16_t o : owner_) {
    if (o == kNoOwner) {
      return false;
    }
  }
  return true;
}

std::vector<Address> SlotMap::masters() const {
  std::vector<bool> listed(nodes_.size(), false);
  std::vector<Address> out;
  for (uint16_t o : owner_) {
    if (o != kNoOwner && !listed[o]) {
      listed[o] = true;
      out.push_back(nodes_[o].address);
    }
  }
  return out;
}

void SlotMap::moved(uint16_t slot, const Address& to) {
  if (slot >= kClusterSlots) {
    return;
  }
  owner_[slot] = kNoOwner;
  // By port first: the cheap comparison, and the one that differs most.
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].address.port == to.port && nodes_[i].address.host == to.host) {
      owner_[slot] = static_cast<uint16_t>(i);
      return;
    }
  }
  if (nodes_.size() - named_ >= compact_at_) {
    forgetIdleMovedNodes();
    // Doubling: when most of them still own slots, the next round waits
    // for as many again, so that a flood of MOVEDs costs amortised O(1).
    compact_at_ = std::max(kMaxMovedNodes, 2 * (nodes_.size() - named_));
  }
  std::string id;
  for (const Node& n : nodes_) {
    for (const Replica& r : n.replicas) {
      if (r.address == to && id.empty()) {
        id = r.id;
      }
    }
  }
  nodes_.push_back(Node{std::move(id), to, {}});
  owner_[slot] = static_cast<uint16_t>(nodes_.size() - 1);
}

void SlotMap::forgetIdleMovedNodes() {
  std::vector<uint16_t> renumber(nodes_.size(), kNoOwner);
  std::vector<Node> kept;
  for (size_t i = 0; i < named_; ++i) {
    renumber[i] = static_cast<uint16_t>(i);
    kept.push_back(std::move(nodes_[i]));
  }
  for (uint16_t& o : owner_) {
    if (o == kNoOwner) {
      continue;
    }
    if (renumber[o] == kNoOwner) {
      renumber[o] = static_cast<uint16_t>(kept.size());
      kept.push_back(std::move(nodes_[o]));
    }
    o = renumber[o];
  }
  nodes_ = std::move(kept);
}

}  // namespace evh::redis
