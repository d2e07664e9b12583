// The recorder plugin's list on a cluster (see cluster_records.h).
#include "support/cluster_records.h"

#include <map>

namespace evh::test {

std::string clusterEvent(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"productId":"p-1"}})";
}

std::vector<std::string> recorded(RedisCluster& cluster, const std::string& key) {
  std::vector<std::string> out;
  ReplyPtr r = cluster.commandForKey(key, {"LRANGE", key, "0", "-1"});
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) {
    std::string rec(r->element[i]->str, r->element[i]->len);
    const size_t a = rec.find('|', rec.find('|') + 1) + 1;
    out.push_back(rec.substr(a, rec.find('|', a) - a));
  }
  return out;
}

bool recordedOnce(RedisCluster& cluster, const std::string& key, const std::set<std::string>& ids,
                  std::string* problem) {
  std::map<std::string, int> seen;
  for (const auto& id : recorded(cluster, key)) {
    ++seen[id];
  }
  for (const auto& [id, n] : seen) {
    if (n > 1) {
      if (problem != nullptr) {
        *problem = id + " was handled " + std::to_string(n) + " times";
      }
      return false;
    }
  }
  for (const auto& id : ids) {
    if (seen.count(id) == 0) {
      if (problem != nullptr) {
        *problem = id + " was not handled (yet)";
      }
      return false;
    }
  }
  return true;
}

}  // namespace evh::test
