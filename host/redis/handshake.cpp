// AUTH / SELECT / PING: the commands and what their replies mean.
#include "redis/handshake.h"

#include <hiredis/hiredis.h>

#include <string_view>

namespace evh::redis {
namespace {

// A server's error text for AUTH, without the password. Redis itself can echo
// it: with AUTH renamed away (rename-command, as hardened setups do) the
// reply is "ERR unknown command 'AUTH', with args beginning with: 'evh'
// 'PASSWORD' ", its argument list cut at 128 bytes -- so a cut-off password
// shows too. Anything from Redis's argument list on is dropped, every copy
// of the password masked, and the text cut where a long piece of the
// password's start appears.
std::string withoutPassword(std::string text, const std::string& password) {
  static constexpr std::string_view kArgs = ", with args beginning with:";
  if (const size_t at = text.find(kArgs); at != std::string::npos) {
    text.resize(at);
    text += " (its arguments not shown)";
  }
  if (password.empty()) {
    return text;
  }
  for (size_t at = text.find(password); at != std::string::npos; at = text.find(password, at)) {
    text.replace(at, password.size(), "(password)");
  }
  constexpr size_t kPiece = 8;  // shorter pieces occur by chance
  if (password.size() > kPiece) {
    if (const size_t at = text.find(std::string_view(password).substr(0, kPiece)); at != std::string::npos) {
      text.resize(at);
      text += "(cut: the rest may hold the password)";
    }
  }
  return text;
}

// ROLE's answer is an array whose first element names the role: "master",
// "slave" (a replica) or "sentinel".
std::string checkRole(const redisReply& reply, const std::string& where) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements == 0 || reply.element[0] == nullptr ||
      (reply.element[0]->type != REDIS_REPLY_STRING && reply.element[0]->type != REDIS_REPLY_STATUS)) {
    return "protocol error: unexpected reply to ROLE from " + where + " (type " + std::to_string(reply.type) +
           ", not an array naming the role)";
  }
  const std::string_view role(reply.element[0]->str, reply.element[0]->len);
  if (role == "master") {
    return {};
  }
  return "ROLE: " + where + " is not the master (it is a " +
         std::string(role == "slave" ? "replica" : role.substr(0, 32)) + ")";
}

}  // namespace

Handshake::Handshake(const Endpoint& e) : password_(e.password) {
  if (!e.password.empty()) {
    if (e.username.empty()) {
      steps_.push_back(Step{"AUTH", {"AUTH", e.password}, "OK"});
    } else {
      steps_.push_back(Step{"AUTH", {"AUTH", e.username, e.password}, "OK"});
      auth_note_ = " (as user " + e.username + ")";
    }
  }
  if (e.db != 0) {
    const std::string db = std::to_string(e.db);
    steps_.push_back(Step{"SELECT " + db, {"SELECT", db}, "OK"});
  }
  steps_.push_back(Step{"PING", {"PING"}, "PONG"});
  if (e.require_master) {
    steps_.push_back(Step{"ROLE", {"ROLE"}, "master"});
  }
}

std::string Handshake::check(size_t i, const redisReply& reply, const std::string& where) const {
  const Step& step = steps_.at(i);
  if (reply.type == REDIS_REPLY_ERROR) {
    std::string text(reply.str, reply.len);
    if (step.argv.front() == "AUTH") {
      return step.name + " failed: " + withoutPassword(std::move(text), password_) + auth_note_;
    }
    return step.name + " failed: " + text;
  }
  if (step.argv.front() == "ROLE") {
    return checkRole(reply, where);
  }
  // +OK to AUTH and SELECT, +PONG to PING: anything else is not Redis
  // speaking (a wrong port, a proxy gone wrong) and must not count as up.
  if (reply.type != REDIS_REPLY_STATUS || std::string_view(reply.str, reply.len) != step.expected) {
    return "protocol error: unexpected reply to " + step.name + " from " + where + " (type " +
           std::to_string(reply.type) + ", not +" + step.expected + ")";
  }
  return {};
}

}  // namespace evh::redis
