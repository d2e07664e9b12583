// What the cluster tests' evhost handled: the recorder test plugin pushes
// "<plugin>|<channel>|<eventId>|..." to a list per handled event; these read
// that list wherever its slot lives.
#pragma once

#include "support/redis_cluster.h"

#include <set>
#include <string>
#include <vector>

namespace evh::test {

// A PRODUCT_CREATED event with `id` as its eventId (JSON text).
std::string clusterEvent(const std::string& id);

// The eventIds the recorder plugin pushed to `key`, in the order handled.
std::vector<std::string> recorded(RedisCluster& cluster, const std::string& key);

// Every one of `ids` recorded, and nothing recorded twice; `problem` (when
// given) says what is not so.
bool recordedOnce(RedisCluster& cluster, const std::string& key, const std::set<std::string>& ids,
                  std::string* problem = nullptr);

}  // namespace evh::test
