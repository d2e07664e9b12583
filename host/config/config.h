// Typed configuration of one evhost deployment, loaded from YAML.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evh::config {

// Where a value came from, for error messages about it after loading.
struct Origin {
  std::string file;
  int line = 0;     // 1-based; 0 when unknown
  std::string key;  // dotted key path, e.g. "channels.product.routes[0].plugins[1]"

  std::string describe() const;  // "file:line: key"
};

struct Backoff {
  uint32_t initial_ms = 100;
  uint32_t max_ms = 10000;
  double multiplier = 2.0;
};

// redis.tls: TLS to Redis (docs/config.md#tls). Files are absolute paths
// once loaded (relative ones are taken from the config file's folder).
struct Tls {
  bool enabled = false;  // also set by a rediss:// URL
  std::string ca_file;   // empty with ca_dir empty: the system's CAs
  std::string ca_dir;
  std::string cert_file;  // client certificate (tls-auth-clients); with key_file
  std::string key_file;
  std::string server_name;          // SNI and the certificate's name; empty: redis.host
  std::string min_version = "1.2";  // "1.2" or "1.3"
  bool verify = true;               // false: logged as a warning at every start
  Origin origin;                    // the tls: key (or the URL), for messages
};

// redis.sentinel: the master's address asked of Redis Sentinel rather than
// configured (docs/config.md#sentinel). The master's own credentials, db and
// TLS stay redis.*; these are the sentinels'.
// A node to ask, written host:port in the config (redis.sentinel.nodes,
// redis.cluster.nodes).
struct NodeAddress {
  std::string host;  // a name or a numeric address (IPv6 without brackets)
  uint16_t port = 0;
};

struct Sentinel {
  std::string master;              // the name the sentinels monitor it by; empty: no Sentinel (redis.host:port)
  std::vector<NodeAddress> nodes;  // at least one; any reachable one answers (port 26379 unless given)
  std::string username;            // the sentinels' ACL user; empty: AUTH <password> or none
  std::string password;            // `password` or read from `password_file`
  // The sentinels' TLS: their own `tls:` map (own_tls), else redis.tls's
  // (a deployment that encrypts its data nodes encrypts its sentinels too).
  bool own_tls = false;
  Tls tls;
  Origin origin;  // the sentinel: key, for messages
  bool enabled() const noexcept { return !master.empty(); }
};

// redis.cluster: a Redis Cluster. The nodes are seeds: any reachable one
// tells the slot map (which master owns which of the 16384 slots), and every
// key is then read and written on the master owning its slot.
struct Cluster {
  std::vector<NodeAddress> nodes;        // empty: no Cluster (redis.host:port or Sentinel); port 6379 unless given
  uint32_t refresh_interval_ms = 30000;  // the slot map is asked for again this often (and on every redirect)
  Origin origin;                         // the cluster: key, for messages
  bool enabled() const noexcept { return !nodes.empty(); }
};

struct Redis {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string username;  // empty: legacy AUTH <password>, or no AUTH when password is empty too
  std::string password;  // from `password`, the URL, or read from `password_file` at load
  uint32_t connect_timeout_ms = 2000;
  Backoff reconnect;
  uint32_t ping_interval_ms = 3000;
  uint32_t ping_timeout_ms = 2000;
  Tls tls;
  Sentinel sentinel;
  Cluster cluster;
  // The sentinels' TLS settings in force: their own, or redis.tls.
  const Tls& sentinelTls() const noexcept { return sentinel.own_tls ? sentinel.tls : tls; }
};

enum class Jitter { None, Full, Equal };

// How a failed call (RETRY, a thrown exception, a timeout) is tried again.
struct RetryPolicy {
  uint32_t max_attempts = 3;      // every attempt, the first included (env RETRY_MAX_ATTEMPTS)
  uint32_t base_delay_ms = 1000;  // delay before the 2nd attempt (env RETRY_BASE_DELAY)
  double multiplier = 2.0;        // each further delay is the previous one times this
  uint32_t max_delay_ms = 60000;  // no delay is longer
  Jitter jitter = Jitter::Equal;  // none: exact; full: random in [0, d]; equal: d/2 + random in [0, d/2]
};

// The plan's circuit breaker, per plugin instance.
struct BreakerPolicy {
  uint32_t threshold = 5;            // consecutive failures that open it (env CIRCUIT_BREAKER_THRESHOLD)
  uint32_t open_ms = 60000;          // how long it stays open (env CIRCUIT_BREAKER_TIMEOUT)
  uint32_t half_open_max_calls = 3;  // trial calls when half-open; all must succeed to close it
  uint32_t max_wait_ms = 90000;      // longest an event waits for an open breaker, then circuit_open
  uint32_t max_waiting = 10000;      // most events waiting per plugin; beyond: circuit_open at once
};

struct DeadLetter {
  std::string plugin;  // instance that receives dead-letter entries; empty: fallback file only
  std::string fallback_file = "evhost-dead-letter.jsonl";  // when that plugin fails (relative: to the working dir)
  uint32_t timeout_ms = 5000;                              // a dead-letter call not finished by then counts as failed
  // The logical channel dead-letter entries are for (the plan's
  // PUBSUB_CHANNELS.DLQ): the `channel` of the DEAD_LETTER event the plugin sees.
  std::string channel = "jollyjet:events:dlq";
  Origin origin;
};

// Where the values of a plugin's `config:` block are in the YAML, so that a
// problem a plugin reports by JSON Pointer is shown at its line, and which of
// its values came from ${VAR} references (they may be secrets: masked in
// what is shown about the block).
struct ConfigBlockMap {
  int line = 0;                       // the `config:` key's line; 0 when the plugin has no block
  std::map<std::string, int> lines;   // JSON Pointer ("/a/b", "/list/0") -> the line of its key (list item: the item)
  std::vector<std::string> expanded;  // each value ${VAR} references took from the environment (not defaults)

  // The line of `pointer`, or of its nearest ancestor the map knows, or the
  // block's line: a key that is missing is shown at its parent.
  int lineOf(std::string_view pointer) const;
};

struct Plugin {
  std::string name;         // instance name: the key under `plugins:`
  std::string path;         // as written (bare name or path)
  std::string config_json;  // the `config:` block converted to JSON; "{}" when absent
  std::string config_dir;   // folder of the config file, for relative paths
  std::string sha256;       // the file's pinned SHA-256, 64 lowercase hex digits; empty: not pinned
  uint32_t timeout_ms = 0;  // a call not finished by then counts as a failure (RETRY); 0: none
  BreakerPolicy breaker;    // root `circuit_breaker:` overridden by the plugin's own
  Origin origin;
  ConfigBlockMap config_map;  // where config_json's values are in the file
};

enum class Transport { PubSub, Stream };

// A channel read from a Redis Stream through a consumer group.
struct StreamOptions {
  std::string group = "evhost";       // created (MKSTREAM) when missing
  std::string consumer;               // empty: "<hostname>-<pid>" at start
  uint32_t count = 100;               // entries per XREADGROUP
  uint32_t block_ms = 2000;           // XREADGROUP BLOCK
  bool from_beginning = true;         // a group evhost creates starts at 0 (true) or at $ (new entries only)
  uint32_t claim_idle_ms = 30000;     // entries idle this long in another consumer are claimed (XAUTOCLAIM)
  uint32_t claim_interval_ms = 5000;  // how often to look for them; 0: never
  uint32_t max_deliveries = 10;       // an entry delivered more often is dead-lettered as poison
  uint64_t trim_maxlen = 0;           // keep about this many entries; 0: no length bound
  uint64_t trim_max_age_ms = 0;       // drop entries older than this; 0: no age bound
  uint32_t trim_interval_ms = 10000;
};

struct Route {
  std::vector<std::string> events;   // event types; empty means every type ("*")
  std::vector<std::string> plugins;  // instance names, in call order
  RetryPolicy retry;                 // root `retry:` overridden by the route's own
  // idempotency: {ttl_ms}: a (plugin, eventId) handled within ttl_ms is not
  // handled again; 0: off. The mark is written only after success.
  uint64_t idempotency_ttl_ms = 0;
  Origin origin;
};

// channels.<name>.signature: signed events (docs/signatures.md).
struct SigningKey {
  std::string id;      // the operator's name for it (logs, metrics); not secret
  std::string secret;  // the key's bytes, decoded from whsec_<base64>; never logged
  Origin origin;
};

struct Signature {
  bool enabled = false;          // a signature: map turns it on
  std::vector<SigningKey> keys;  // any of them verifies (rotation: old and new together)
  uint32_t tolerance_s = 300;    // a timestamp further than this in the past or future is refused
  bool replay_check = true;      // each webhook-id delivered once (a seen id in Redis)
  Origin origin;
};

// channels.<name>.share: a Pub/Sub channel whose events the evhost instances
// share (docs/config.md, "Sharing a Pub/Sub channel"). Every instance
// subscribes and forwards each message into `stream` -- one script call,
// XADD only when no instance forwarded the same bytes within window_s --
// and the instances read that stream as one consumer group (the channel's
// `stream:` options): each event is handled once, by one of them.
struct Share {
  bool enabled = false;      // a share: map turns it on
  std::string stream;        // without prefix; default "<channel>:shared"
  uint32_t window_s = 60;    // how long a message's bytes are remembered
  uint64_t maxlen = 100000;  // XADD MAXLEN ~ (0: unbounded)
  Origin origin;
};

struct Channel {
  std::string name;      // the key under `channels:`: logical name, without prefix
  bool pattern = false;  // PSUBSCRIBE instead of SUBSCRIBE (glob in name)
  bool sharded = false;  // sharded Pub/Sub (Redis 7): SSUBSCRIBE, published with SPUBLISH
  Transport transport = Transport::PubSub;
  StreamOptions stream;  // transport: stream, or a shared Pub/Sub channel's stream
  Share share;           // transport: pubsub only
  Signature signature;
  std::vector<Route> routes;
  Origin origin;
};

struct Limits {
  uint32_t max_message_bytes = 1024 * 1024;
  uint32_t max_in_flight = 10000;
  uint32_t max_json_depth = 64;
  // Dead-letter entries made but not yet stored (file or plugin), in bytes.
  // Above it evhost stops reading Pub/Sub until half of it is stored, so
  // that a flood it sheds cannot grow its memory without bound.
  uint32_t max_dead_letter_bytes = 16u << 20;
};

enum class LogFormat { Text, Json };

struct Logging {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  LogFormat format = LogFormat::Text;
  bool debug_events = false;  // log every stage of every event (DEBUG_EVENTS)
};

// The ops HTTP listener: GET /metrics, /healthz, /readyz (docs/metrics.md).
struct Ops {
  bool enabled = true;             // `listen: ""` turns it off
  std::string host = "127.0.0.1";  // an IP address (an IPv6 one without its brackets)
  uint16_t port = 9464;            // 0: a free port the system picks (the start-up log line says which)
  Origin origin;                   // where the address was set: ops.listen in the file, or --ops-listen
  // GET /healthz fails once the event loop has not turned for this long
  // (the watchdog measures it, off the loop).
  uint32_t liveness_timeout_ms = 1000;
  // GET /health/pubsub: a check's answer serves for cache_ms; a check takes
  // at most timeout_ms.
  uint32_t pubsub_check_cache_ms = 5000;
  uint32_t pubsub_check_timeout_ms = 2000;
  // POST /reload's bearer token, from `token_file` (a secret file) or
  // `token` (a ${VAR}); "": none (POST /reload from this host only). Never
  // logged.
  std::string token;
  // "127.0.0.1:9464", "[::1]:9464".
  std::string address() const;
};

struct Config {
  std::string file;         // path as given
  std::string file_sha256;  // the file's SHA-256 (hex) as read; empty for a config not read from a file
  std::string environment;  // e.g. "dev"; empty for no prefix
  std::string prefix() const { return environment.empty() ? std::string() : environment + ":"; }
  Redis redis;
  std::vector<Plugin> plugins;  // in file order (init order; shutdown is the reverse)
  std::vector<Channel> channels;
  Limits limits;
  Logging logging;
  RetryPolicy retry;      // root defaults (already folded into each route)
  BreakerPolicy breaker;  // root defaults (already folded into each plugin)
  DeadLetter dead_letter;
  uint32_t workers = 4;  // worker threads for blocking plugins
  uint32_t shutdown_timeout_ms = 10000;
  uint32_t loop_stall_ms = 2000;  // the event loop not turning this long is logged (watchdog)
  // Where evhost keeps files of its own (the crash file); "": EVH_STATE_DIR
  // from the environment, else the working directory (stateDir()).
  std::string state_dir;
  Ops ops;
  std::string stateDir() const;
};

// Parses redis://[user[:password]@]host[:port][/db] (user and password
// percent-decoded; host may be an [IPv6] literal) and sets host, port, db,
// username and password of `out` (port 6379 and db 0 when the URL omits them);
// the other fields are left alone. Returns false, with `error` set to a
// one-line reason and `out` untouched, when the URL is malformed; the reason
// quotes no part of the URL that may be a password (user info, port, path).
bool parseRedisUrl(std::string_view url, Redis& out, std::string& error);

// Parses the ops listener's address: "HOST:PORT", HOST an IPv4 address or an
// IPv6 one in brackets ("[::1]:9464"), PORT in 0..65535 (0: any free port);
// "" turns the listener off. Sets enabled, host and port of `out`; the other
// fields are left alone. Returns false, with `error` set to a one-line reason
// and `out` untouched, when the text is not such an address. Shared by the
// loader (ops.listen) and evhost's --ops-listen.
bool parseListenAddress(std::string_view text, Ops& out, std::string& error);

// Every problem found, each naming file:line and key; empty when valid.
struct LoadResult {
  std::optional<Config> config;
  std::vector<std::string> errors;
  // Every value taken from the environment (${VAR}s, the retry and breaker
  // defaults' variables, signing keys' `env`): what may be a secret in
  // `errors` (gotValue quotes a bad value), to mask (config/mask.h) where
  // they are shown beyond the console.
  std::vector<std::string> from_environment;
};

// Looks up environment variables for ${VAR} expansion; replaceable in tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> processEnv(const std::string& name);

// What a load reads beyond the YAML. evhctl's commands other than evhost's
// own checks skip the channels' signing keys: they never verify, and an
// operator's shell lacks evhost's key variables and may not read its key
// files (the keys' form is still checked; their values are left empty).
struct LoadOptions {
  bool signing_keys = true;
};
LoadResult loadFile(const std::string& path, const EnvLookup& env = processEnv, LoadOptions options = {});
LoadResult loadString(const std::string& yaml, const std::string& file_name, const EnvLookup& env = processEnv);

}  // namespace evh::config
