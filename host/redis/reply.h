// A C view (evh_reply) of a hiredis reply, for plugins' reply callbacks.
#pragma once

#include <evh/plugin.h>

#include <vector>

struct redisReply;

namespace evh::redis {

// Borrows the redisReply's strings: valid while the redisReply is.
class ReplyView {
 public:
  explicit ReplyView(const redisReply* reply);
  const evh_reply* root() const noexcept { return nodes_.empty() ? nullptr : &nodes_[0]; }

 private:
  size_t count(const redisReply* r) const;
  size_t build(const redisReply* r, size_t& next_node, size_t& next_ptr);

  std::vector<evh_reply> nodes_;
  std::vector<const evh_reply*> children_;
};

}  // namespace evh::redis
