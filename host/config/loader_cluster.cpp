// The `redis.cluster:` section: the seed nodes of a Redis Cluster and how
// often its slot map is asked for (docs/config.md#cluster).
#include <string>

#include "config/loader.h"

namespace evh::config {

void Loader::readCluster(const Entry& owner) {
  Cluster& c = config_.redis.cluster;
  c.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
  std::optional<Entry> nodes;
  const bool is_map = readFields(
      owner, {
                 {"nodes",
                  [&](const Entry& e) {
                    nodes = e;
                    c.nodes = readNodes(e, "cluster node", 6379);
                  }},
                 // Under 1 s the map would be asked for more often than a
                 // failover takes; redirects ask for it anyway.
                 {"refresh_interval_ms", [&](const Entry& e) { readInteger(e, c.refresh_interval_ms, 1000, kU32Max); }},
             });
  if (is_map && !nodes) {
    error(owner.key_node.Mark(), owner.path + ".nodes",
          "is required: some of the cluster's nodes, as [host:port, ...] (any one that answers tells the rest)");
  }
}

}  // namespace evh::config
