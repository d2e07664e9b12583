// hiredis reply -> evh_reply tree, without copying strings.
#include "redis/reply.h"

#include <hiredis/hiredis.h>

namespace evh::redis {

ReplyView::ReplyView(const redisReply* reply) {
  if (reply == nullptr) {
    return;
  }
  size_t n = count(reply);
  nodes_.resize(n);
  children_.resize(n - 1);
  size_t next_node = 0;
  size_t next_ptr = 0;
  build(reply, next_node, next_ptr);
}

size_t ReplyView::count(const redisReply* r) const {
  size_t n = 1;
  if (r->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < r->elements; ++i) {
      n += count(r->element[i]);
    }
  }
  return n;
}

// Lays the tree out in pre-order; an array's element pointers are one
// contiguous run of children_, filled as its children are built.
size_t ReplyView::build(const redisReply* r, size_t& next_node, size_t& next_ptr) {
  size_t me = next_node++;
  evh_reply& out = nodes_[me];
  out.struct_size = sizeof(evh_reply);
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = EVH_REPLY_STRING;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = EVH_REPLY_ARRAY;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = EVH_REPLY_INTEGER;
      break;
    case REDIS_REPLY_STATUS:
      out.type = EVH_REPLY_STATUS;
      break;
    case REDIS_REPLY_ERROR:
      out.type = EVH_REPLY_ERROR;
      break;
    default:
      out.type = EVH_REPLY_NIL;
      break;
  }
  out.integer = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  if (r->str != nullptr) {
    out.str = evh_str{r->str, r->len};
  } else {
    out.str = evh_str{"", 0};
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
    size_t first = next_ptr;
    next_ptr += r->elements;
    out.elements = r->elements;
    out.element = &children_[first];
    for (size_t i = 0; i < r->elements; ++i) {
      size_t child = build(r->element[i], next_node, next_ptr);
      children_[first + i] = &nodes_[child];
    }
  }
  return me;
}

}  // namespace evh::redis
