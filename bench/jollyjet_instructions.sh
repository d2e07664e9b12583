#!/usr/bin/env bash
# Instructions per event, counted by valgrind's callgrind: redis-server's (or
# evhost's) over the durable JollyJet drain -- N PRODUCT_CREATED entries
# pre-filled in bench:jollyjet:events:product, then drained by
# config/examples/durable.yaml with the audit plugin's fsync "never".
#
#   bench/jollyjet_instructions.sh BUILD_DIR OUT_DIR [redis|evhost] [N]
#   bench/jollyjet_instructions.sh BUILD_DIR OUT_DIR evhost N --without-start
#   bench/jollyjet_instructions.sh BUILD_DIR OUT_DIR evhost-cpu N
#
# Why: on this 2-CPU virtual machine, the drain's events/s and CPU times
# move by ±20 % from one hour to the next (docs/benchmarks/
# issue15-jollyjet-pipeline.md, the fifth round), more than most changes
# make. An instruction count moves by under 1 % between runs for evhost,
# up to 2 % for Redis (its count includes its event loop's turns, which
# depend on timing), so it settles whether a change to the product script
# (Redis) or to evhost's path (evhost) costs more or less. It is not a time: cache
# misses and system calls are not in it; the drain's figures stay the
# measure of speed.
#
# "redis" counts redis-server from just before evhost starts to the drain's
# end (the pre-fill is not counted); "evhost" counts evhost's whole run, its
# start included (about 125 M instructions here: plugin loading hashes the
# plugin files), so compare like with like. Prints one line:
#   <who> instructions <total> per event <total / N>
# --without-start counts evhost over N and over 2N events (in OUT_DIR/n and
# OUT_DIR/2n) and prints the difference per event: an event's cost alone.
# and leaves callgrind's file in OUT_DIR/callgrind.out (callgrind_annotate
# reads it).
# "evhost-cpu" runs evhost as it is, no valgrind, over N events (take
# 200000 or more), and prints its CPU time (user + system, every thread,
# from /proc at the drain's end) per event, its start included (about
# 0.05 s): a time, so it moves with the machine, but steadier than the
# drain's figures in bench/run.py (one whole drain, nothing else running;
# issue 15's seventh round). Interleave the builds compared, and take
# medians of several runs.
set -euo pipefail

build=$(cd "${1:?BUILD_DIR}" && pwd)
out=${2:?OUT_DIR}
who=${3:-redis}
n=${4:-3000}
case "$who" in redis | evhost | evhost-cpu | evhost-cpu-once) ;;
  *) echo "$0: count redis, evhost or evhost-cpu, not '$who'" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ "$who" = evhost-cpu ]; then
  [ -z "${5:-}" ] || { echo "$0: evhost-cpu takes no option ('$5')" >&2; exit 2; }
  ticks=$("$0" "$build" "$out" evhost-cpu-once "$n" | awk '{ print $3 }')
  tck=$(getconf CLK_TCK)
  awk -v t="$ticks" -v n="$n" -v tck="$tck" 'BEGIN {
    printf "evhost CPU us per event %.2f (%d events, %d ticks of %d a second, its start included)\n",
      t / tck / n * 1e6, n, t, tck }'
  exit 0
fi
if [ "${5:-}" = --without-start ]; then
  [ "$who" = evhost ] || { echo "$0: --without-start counts evhost only" >&2; exit 2; }
  one=$("$0" "$build" "$out/n" evhost "$n" | awk '{ print $3 }')
  two=$("$0" "$build" "$out/2n" evhost "$((2 * n))" | awk '{ print $3 }')
  echo "evhost instructions per event without its start $(((two - one) / n)) ($n events: $one, $((2 * n)): $two)"
  exit 0
fi
[ -z "${5:-}" ] || { echo "$0: unknown option '$5'" >&2; exit 2; }
rm -f "$out/callgrind.out" "$out/audit.jsonl" "$out/dlq-spool.jsonl"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key=bench:jollyjet:events:product
redis_pid= evhost_pid=
cleanup() {
  [ -n "$evhost_pid" ] && kill "$evhost_pid" 2>/dev/null || true
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

redis_cmd=(redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$out")
if [ "$who" = redis ]; then
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.out" "${redis_cmd[@]}" \
    >"$out/redis.log" 2>&1 &
else
  "${redis_cmd[@]}" >"$out/redis.log" 2>&1 &
fi
redis_pid=$!
for _ in $(seq 150); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.2
done
redis-cli -p "$port" ping >/dev/null || { echo "$0: redis-server did not start (see $out/redis.log)" >&2; exit 1; }

"$build/bin/evh_loadgen" --port "$port" --mode xadd --target "$key" --count "$n" --rate 0 --run-id instructions \
  >/dev/null
redis-cli -p "$port" XGROUP CREATE "$key" jollyjet-product 0 >/dev/null
# The shipped file with the audit plugin's fsync set to never: the count is
# of instructions, and fsync is one system call either way.
sed 's|^      file: \(.*\)$|      file: \1\n      fsync: never|' "$root/config/examples/durable.yaml" >"$out/evhost.yaml"
grep -q '^      fsync: never$' "$out/evhost.yaml" || { echo "$0: durable.yaml has changed shape (no audit file:)" >&2; exit 1; }
# No ops listener: its default port is fixed, and two counts at once would
# collide on it.
grep -q '^ops:' "$out/evhost.yaml" && { echo "$0: durable.yaml has an ops: section now; turn its listener off here" >&2; exit 1; }
printf 'ops:\n  listen: ""\n' >>"$out/evhost.yaml"

if [ "$who" = redis ]; then
  callgrind_control -i on "$redis_pid" >/dev/null 2>&1 || { echo "$0: callgrind_control could not start counting" >&2; exit 1; }
fi
evhost_cmd=("$build/bin/evhost" --config "$out/evhost.yaml")
[ "$who" = evhost ] && evhost_cmd=(valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "${evhost_cmd[@]}")
env -u REDIS_PASSWORD_FILE -u REDIS_USERNAME -u RETRY_MAX_ATTEMPTS -u RETRY_BASE_DELAY -u LOG_LEVEL -u LOG_FORMAT \
  EVH_ENV=bench REDIS_HOST=127.0.0.1 REDIS_PORT="$port" REDIS_PASSWORD= EVH_STATE_DIR="$out" EVH_CONSUMER=bench-1 \
  "${evhost_cmd[@]}" >"$out/evhost.log" 2>&1 &
evhost_pid=$!

# Drained: every entry and the load generator's end sentinel read by the
# group, none pending.
deadline=$((SECONDS + 600))
while :; do
  kill -0 "$evhost_pid" 2>/dev/null || { echo "$0: evhost exited during the drain (see $out/evhost.log)" >&2; exit 1; }
  read -r read_ pending < <(redis-cli -p "$port" XINFO GROUPS "$key" |
    awk '/^entries-read$/ { getline; r = $0 } /^pending$/ { getline; p = $0 } END { print r + 0, p + 0 }')
  [ "$read_" -ge $((n + 1)) ] && [ "$pending" -eq 0 ] && break
  [ $SECONDS -lt $deadline ] || { echo "$0: the drain did not finish in 600 s" >&2; exit 1; }
  sleep 0.2
done
if [ "$who" = redis ]; then
  callgrind_control -i off "$redis_pid" >/dev/null 2>&1 || { echo "$0: callgrind_control could not stop counting" >&2; exit 1; }
fi
if [ "$who" = evhost-cpu-once ]; then
  # utime + stime of the whole process (every thread), in clock ticks.
  ticks=$(awk '{ print $14 + $15 }' "/proc/$evhost_pid/stat")
fi
kill "$evhost_pid"
wait "$evhost_pid" || true
evhost_pid=
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait "$redis_pid" || true
redis_pid=

if [ "$who" = evhost-cpu-once ]; then
  echo "evhost cpu_ticks $ticks"
  exit 0
fi
total=$(callgrind_annotate "$out/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
[ -n "$total" ] || { echo "$0: no totals in $out/callgrind.out" >&2; exit 1; }
echo "$who instructions $total per event $((total / n))"
