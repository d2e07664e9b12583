// A subscriber connection's (P|S)SUBSCRIBE and SUNSUBSCRIBE (see connection.h).
#include "redis/connection.h"

#include "redis/hiredis_compat.h"

#include <hiredis/hiredis.h>

#include <cstring>

namespace evh::redis {

bool Connection::subscribe(SubscribeKind kind, const std::string& name, redisCallbackFn* fn, void* privdata) {
  if (mode_ != Mode::Subscriber || !ready_ || ac_ == nullptr) {
    return false;
  }
  if (kind == SubscribeKind::Shard) {
    if (!compat::shardSubscribe(ac_, name, fn, privdata)) {
      return false;
    }
  } else {
    const char* argv[] = {kind == SubscribeKind::Pattern ? "PSUBSCRIBE" : "SUBSCRIBE", name.c_str()};
    const size_t lens[] = {std::strlen(argv[0]), name.size()};
    if (!command(2, argv, lens, fn, privdata)) {
      return false;
    }
  }
  // Redis answers (P|S)SUBSCRIBEs in the order sent: the reader hooks match
  // each confirmation or refusal to the oldest one here.
  guard_.expectSubscribe(kind, name);
  return true;
}

bool Connection::unsubscribeShard(const std::string& name) {
  if (mode_ != Mode::Subscriber || !ready_ || ac_ == nullptr) {
    return false;
  }
  const char* argv[] = {"SUNSUBSCRIBE", name.c_str()};
  const size_t lens[] = {12, name.size()};
  char* cmd = nullptr;
  const int len = redisFormatCommandArgv(&cmd, 2, argv, lens);
  if (len < 0) {
    return false;
  }
  compat::writeRaw(ac_, std::string_view(cmd, static_cast<size_t>(len)));
  redisFreeCommand(cmd);
  return true;
}

}  // namespace evh::redis
