#!/usr/bin/env bash
# The Debian packages end to end, without touching the system it runs on:
#  1. cpack builds evhost and evhost-dev from this (release) build tree;
#  2. dpkg-deb: their fields, files, conffiles and maintainer scripts;
#  3. lintian: any error fails (warnings and notes are printed);
#  4. dpkg installs evhost into a scratch root (--root, with the maintainer
#     scripts run chrootless, DPKG_ROOT set: they work on that root), and into
#     another where systemd-sysusers is not on the PATH (useradd's way);
#  5. the installed evhost, with the installed configuration and plugins and
#     a clean environment, runs against a private redis-server on a free
#     loopback port: ready (/readyz), handles a PRODUCT_CREATED published by
#     the installed evhctl (the read model in Redis, the audit line), stops 0;
#  6. an edited configuration survives a reinstall; a purge removes the rest;
#  7. evhost-dev builds its own example plugin, extracted anywhere;
#  8. the host's users, /etc and systemd state are as they were.
# Usage: deb_test.sh BUILD_DIR VERSION
set -euo pipefail
build_dir=$1 version=$2

tools=(apt-get cpack dpkg dpkg-deb dpkg-shlibdeps lintian readelf redis-server redis-cli curl cmake)
[ "$(id -u)" -eq 0 ] || tools+=(fakeroot)
for tool in "${tools[@]}"; do
  if ! command -v "$tool" >/dev/null; then
    echo "packaging test: $tool is not installed (scripts/test installs what it needs: dpkg-dev lintian ...)" >&2
    exit 1
  fi
done

work=$(mktemp -d /tmp/evh-pkg-XXXXXX)
redis_pid="" evhost_pid=""
cleanup() {
  [ -n "$evhost_pid" ] && kill -9 "$evhost_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  rm -rf "$work"
  return 0
}
trap cleanup EXIT

step() { printf '== %s (at %s s)\n' "$*" "$SECONDS"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# has FILE PATTERN WHAT: FILE has a line matching the extended regex PATTERN.
has() { grep -Eq -- "$2" "$1" || fail "$3 (no line matching '$2' in $1)"; }
hasnt() { ! grep -Eq -- "$2" "$1" || fail "$3 ($(grep -E -- "$2" "$1" | head -n1))"; }

# What the system looks like where the packages must leave no trace.
host_state() {
  for f in /etc/passwd /etc/group /etc/shadow /etc/gshadow /var/lib/dpkg/status; do
    if [ -r "$f" ]; then md5sum "$f"; fi
  done
  # (ls names what does not exist, and fails for it)
  ls -la /etc/evhost /lib/systemd/system/evhost.service /usr/lib/sysusers.d/evhost.conf /etc/systemd/system \
    /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked 2>&1 || true
}
host_state >"$work/host-before"

step "cpack"
arch=$(dpkg --print-architecture)
server="$work/out/evhost_${version}_${arch}.deb"
sdk="$work/out/evhost-dev_${version}_all.deb"
# Under a loose umask on purpose: the package's modes must not depend on the
# builder's (a group-writable plugin folder would make evhost refuse its
# plugins).
if ! (umask 002 && cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$work/out") >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log" >&2
  fail "cpack failed"
fi
if [ ! -f "$server" ] || [ ! -f "$sdk" ]; then
  fail "cpack made $(ls "$work/out"), not $(basename "$server") and $(basename "$sdk")"
fi

step "dpkg-deb: evhost"
dpkg-deb -I "$server" >"$work/server.info"
dpkg-deb -c "$server" | awk '{print $1, $2, $6}' >"$work/server.files"
cat "$work/server.info"
has "$work/server.info" "^ Package: evhost$" "package name"
has "$work/server.info" "^ Version: ${version//./\\.}$" "version"
has "$work/server.info" "^ Architecture: $arch$" "architecture"
has "$work/server.info" "^ Section: net$" "section"
has "$work/server.info" "^ Priority: optional$" "priority"
has "$work/server.info" "^ Maintainer: .+ <.+@.+>$" "maintainer"
has "$work/server.info" "^ Description: Redis event handler host" "description"
# Depends: dpkg-shlibdeps' libraries (versioned), and passwd.
for dep in libc6 libstdc\\+\\+6 libuv1 libhiredis0.14 libssl3 libyaml-cpp0.7 libh2o0.13 libsystemd0 libmimalloc2.0 \
  libcurl4 passwd; do
  has "$work/server.info" "^ Depends: (.*, )?$dep( \\(>= [^)]+\\))?(,|$)" "Depends names $dep"
done
for script in postinst prerm postrm conffiles md5sums; do
  has "$work/server.info" "^ +[0-9]+ bytes, +[0-9]+ lines +\\*? *$script( |$)" "control member $script"
done
dpkg-deb -e "$server" "$work/control"
[ "$(cat "$work/control/conffiles")" = "/etc/evhost/jollyjet.yaml" ] ||
  fail "conffiles lists $(tr '\n' ' ' <"$work/control/conffiles"), not /etc/evhost/jollyjet.yaml alone"
for f in ./usr/bin/evhost ./usr/bin/evhctl; do
  has "$work/server.files" "^-rwxr-xr-x root/root ${f//./\\.}$" "$f, executable, root's"
done
for f in ./usr/lib/evhost/plugins/product.so ./usr/lib/evhost/plugins/audit.so ./usr/lib/evhost/plugins/dlq.so \
  ./etc/evhost/jollyjet.yaml ./lib/systemd/system/evhost.service ./usr/lib/sysusers.d/evhost.conf \
  ./usr/share/doc/evhost/copyright ./usr/share/doc/evhost/changelog.gz ./usr/share/doc/evhost/README.md \
  ./usr/share/doc/evhost/docs/config.md ./usr/share/doc/evhost/examples/production.yaml; do
  has "$work/server.files" "^-rw-r--r-- root/root ${f//./\\.}$" "$f"
done
for f in ./usr/share/man/man1/evhost.1.gz ./usr/share/man/man1/evhctl.1.gz; do
  has "$work/server.files" "^-rw-r--r-- root/root ${f//./\\.}$" "$f (made by help2man when the build found it)"
done
hasnt "$work/server.files" "plugins/bench|/include/|/pkgconfig/|/cmake/" "only the server's files in evhost"
hasnt "$work/server.files" "^d.{6}w" "no folder writable by group or others"

step "dpkg-deb: evhost-dev"
dpkg-deb -I "$sdk" >"$work/sdk.info"
dpkg-deb -c "$sdk" | awk '{print $1, $2, $6}' >"$work/sdk.files"
has "$work/sdk.info" "^ Package: evhost-dev$" "package name"
has "$work/sdk.info" "^ Architecture: all$" "architecture"
has "$work/sdk.info" "^ Section: devel$" "section"
for f in ./usr/include/evh/plugin.h ./usr/include/evh/plugin.hpp ./usr/share/cmake/evh-sdk/evh-sdkConfig.cmake \
  ./usr/share/pkgconfig/evh-sdk.pc ./usr/share/doc/evhost-dev/copyright ./usr/share/doc/evhost-dev/changelog.gz \
  ./usr/share/doc/evhost-dev/example/hello.c; do
  has "$work/sdk.files" "^-rw-r--r-- root/root ${f//./\\.}$" "$f"
done
hasnt "$work/sdk.files" "/bin/|/etc/|\\.so$" "only the SDK in evhost-dev"

step "apt: evhost's dependencies on a system with nothing installed"
# Simulated (-s) against an empty package status: every Depends must be
# found in the Debian archive apt knows (Debian 12's), with what it needs in
# turn -- what `apt install ./evhost_*.deb` does on a fresh system.
touch "$work/empty-status"
if ! apt-get -s --no-install-recommends -o Dir::State::status="$work/empty-status" -o Debug::NoLocking=1 \
  install "$server" >"$work/apt.log" 2>&1; then
  cat "$work/apt.log" >&2
  fail "apt cannot resolve evhost's dependencies (no package lists? apt-get update)"
fi
has "$work/apt.log" "^Conf evhost \(${version//./\\.} " "apt would install evhost"
has "$work/apt.log" "^Conf libhiredis0\.14 " "apt would install libhiredis0.14 with it"

step "stripped binaries"
dpkg-deb -x "$server" "$work/x"
for f in "$work"/x/usr/bin/* "$work"/x/usr/lib/evhost/plugins/*.so; do
  if readelf -S "$f" | grep -Eq '\.symtab|\.debug_'; then
    fail "$f is not stripped"
  fi
done
# The plugins keep the ABI note evhost reads before loading one.
readelf -n "$work/x/usr/lib/evhost/plugins/product.so" | grep -q EVH || fail "product.so lost its EVH note"

step "lintian"
lintian --fail-on error --display-info --tag-display-limit 0 "$server" "$sdk" >"$work/lintian.log" 2>&1 ||
  lintian_status=$?
cat "$work/lintian.log"
[ "${lintian_status:-0}" -eq 0 ] || fail "lintian reports errors (E: above)"

# dpkg --root DIR: the package's files and dpkg's database in DIR.
# --force-script-chrootless: the maintainer scripts run here, with DPKG_ROOT
# set to DIR, instead of in a chroot that would need a whole system in DIR.
# --force-depends: DIR's database lists none of the libraries evhost needs
# (they are this system's, where the installed evhost runs).
# Not as root, fakeroot lets dpkg give the files the package's owners.
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(fakeroot)
scratch_dpkg() {
  local root=$1
  shift
  "${as_root[@]}" dpkg --root="$root" --log="$root/var/log/dpkg.log" --force-script-chrootless --force-depends \
    --force-confdef --force-confold "$@"
}
new_root() {
  mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates" "$1/var/log" "$1/etc"
  touch "$1/var/lib/dpkg/status"
}

step "install into a scratch root"
root="$work/root"
new_root "$root"
scratch_dpkg "$root" -i "$server" >"$work/dpkg-install.log" 2>&1 || {
  cat "$work/dpkg-install.log" >&2
  fail "dpkg -i into $root failed"
}
[ "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' evhost)" = "install ok installed" ] ||
  fail "evhost is not installed in $root"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}\n' evhost >"$work/conffiles"
has "$work/conffiles" "^ /etc/evhost/jollyjet.yaml [0-9a-f]{32}$" "dpkg records the configuration as a conffile"
has "$root/etc/passwd" "^evhost:x:[0-9]+:[0-9]+:evhost event handler host:/var/lib/evhost:/usr/sbin/nologin$" \
  "postinst made the evhost user in the scratch root"
has "$root/lib/systemd/system/evhost.service" "^ExecStart=/usr/bin/evhost --config /etc/evhost/jollyjet.yaml$" \
  "the unit runs the packaged evhost with the packaged configuration"
has "$root/lib/systemd/system/evhost.service" "^Documentation=file:/usr/share/doc/evhost/README.md$" "the unit's docs"
has "$root/etc/evhost/jollyjet.yaml" '^ *file: \$\{EVH_STATE_DIR:-/var/lib/evhost\}/audit.jsonl$' \
  "the installed configuration keeps its state in /var/lib/evhost"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/evhost.service" ] || fail "the service was enabled"
[ -f "$root/var/lib/systemd/deb-systemd-helper-enabled/evhost.service.dsh-also" ] ||
  fail "deb-systemd-helper kept no state for evhost.service in the scratch root"

step "install where systemd-sysusers is missing (useradd)"
root2="$work/root2"
new_root "$root2"
# The user database of a base system.
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root2/etc/passwd"
printf 'root:x:0:\n' >"$root2/etc/group"
(umask 077 && printf 'root:*:19000:0:99999:7:::\n' >"$root2/etc/shadow" && printf 'root:*::\n' >"$root2/etc/gshadow")
# This system's commands, but systemd-sysusers.
mkdir "$work/path"
for d in /usr/sbin /usr/bin /sbin /bin; do
  [ -L "$d" ] || ln -sf -t "$work/path" "$d"/*
done
rm -f "$work/path/systemd-sysusers"
PATH="$work/path" scratch_dpkg "$root2" -i "$server" >"$work/dpkg-install2.log" 2>&1 || {
  cat "$work/dpkg-install2.log" >&2
  fail "dpkg -i into $root2 (no systemd-sysusers) failed"
}
has "$root2/etc/passwd" "^evhost:x:[0-9]+:[0-9]+:evhost event handler host:/var/lib/evhost:/usr/sbin/nologin$" \
  "postinst made the evhost user with useradd"
has "$root2/etc/group" "^evhost:x:[0-9]+:$" "postinst made the evhost group with groupadd"
rm -rf "$root2"

step "run the installed evhost"
redis_dir="$work/redis"
mkdir "$redis_dir"
for _ in $(seq 1 20); do
  port=$(((RANDOM % 30000) + 20000))
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$redis_dir" \
    --logfile "$redis_dir/redis.log" &
  redis_pid=$!
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break 2
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  redis_pid=""
done
[ -n "$redis_pid" ] || fail "could not start redis-server on a free port"

state="$work/state"
mkdir -m 0700 "$state"
# The environment a service has: nothing of the caller's (no EVH_PLUGIN_PATH:
# the plugins are the installed ones, found from the installed binary).
run_env=(env -i PATH=/usr/bin:/bin HOME="$work" EVH_STATE_DIR="$state" EVH_ENV=pkgtest REDIS_HOST=127.0.0.1
  REDIS_PORT="$port")
"${run_env[@]}" "$root/usr/bin/evhost" --check-config "$root/etc/evhost/jollyjet.yaml" >"$work/check.log" 2>&1 ||
  {
    cat "$work/check.log" >&2
    fail "evhost --check-config refuses the installed configuration"
  }
# Not as root, as the service runs (User=evhost): as root, the test runs it as
# nobody, with the installed files root's, as in a real installation.
as_service=()
if [ "$(id -u)" -eq 0 ]; then
  chmod 0755 "$work"
  chown 65534:65534 "$state"
  as_service=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
"${run_env[@]}" "${as_service[@]}" "$root/usr/bin/evhost" --config "$root/etc/evhost/jollyjet.yaml" \
  --ops-listen 127.0.0.1:0 >"$work/evhost.log" 2>&1 &
evhost_pid=$!
ops=""
for _ in $(seq 1 100); do
  ops=$(sed -n 's#.*ops listening on http://\(127\.0\.0\.1:[0-9]*\).*#\1#p' "$work/evhost.log" | head -n1)
  [ -n "$ops" ] && break
  kill -0 "$evhost_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ops" ] || {
  cat "$work/evhost.log" >&2
  fail "evhost did not say where its ops listener is"
}
ready=""
for _ in $(seq 1 100); do
  if curl -fsS "http://$ops/readyz" >"$work/readyz" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || {
  cat "$work/evhost.log" >&2
  fail "the installed evhost never became ready (GET /readyz)"
}
if [ ${#as_service[@]} -gt 0 ] && [ "$(stat -c %u "/proc/$evhost_pid")" != 65534 ]; then
  fail "evhost runs as uid $(stat -c %u "/proc/$evhost_pid"), not as nobody"
fi
for plugin in product audit dlq; do
  has "$work/evhost.log" "plugin $plugin loaded: .* from $root/usr/lib/evhost/plugins/$plugin\\.so " \
    "evhost loaded the installed $plugin plugin"
done
"${run_env[@]}" "$root/usr/bin/evhctl" status --url "http://$ops" >"$work/status" 2>&1 ||
  fail "evhctl status: $(cat "$work/status")"
"${run_env[@]}" "$root/usr/bin/evhctl" publish -c "$root/etc/evhost/jollyjet.yaml" --channel jollyjet:events:product \
  --type PRODUCT_CREATED --id pkg-evt-1 \
  --payload '{"productId":"pkg-1","name":"Mug","price":12.5,"category":"kitchen"}' >"$work/publish.log" 2>&1 ||
  fail "evhctl publish: $(cat "$work/publish.log")"
handled=""
for _ in $(seq 1 100); do
  if [ "$(redis-cli -p "$port" hget pkgtest:jollyjet:product:pkg-1 name)" = Mug ] &&
    grep -q '"pkg-evt-1"' "$state/audit.jsonl" 2>/dev/null; then
    handled=1
    break
  fi
  sleep 0.1
done
[ -n "$handled" ] || {
  cat "$work/evhost.log" >&2
  fail "the event was not handled by the installed product and audit plugins"
}
kill -TERM "$evhost_pid"
evhost_status=0
wait "$evhost_pid" || evhost_status=$?
evhost_pid=""
[ "$evhost_status" -eq 0 ] || {
  cat "$work/evhost.log" >&2
  fail "evhost exited $evhost_status on SIGTERM"
}

step "an edited configuration survives a reinstall"
echo "# edited by the packaging test" >>"$root/etc/evhost/jollyjet.yaml"
scratch_dpkg "$root" -i "$server" >"$work/dpkg-reinstall.log" 2>&1 || {
  cat "$work/dpkg-reinstall.log" >&2
  fail "dpkg -i again failed"
}
has "$root/etc/evhost/jollyjet.yaml" "^# edited by the packaging test$" "the edit was kept"
[ -z "$(find "$root/etc/evhost" -name '*.dpkg-*')" ] || fail "dpkg left $(ls "$root/etc/evhost")"

step "remove, purge"
scratch_dpkg "$root" -r evhost >"$work/dpkg-remove.log" 2>&1 || {
  cat "$work/dpkg-remove.log" >&2
  fail "dpkg -r failed"
}
[ ! -e "$root/usr/bin/evhost" ] || fail "usr/bin/evhost is still there after the removal"
has "$root/etc/evhost/jollyjet.yaml" "^# edited by the packaging test$" "a removal keeps the configuration"
[ "$(readlink "$root/etc/systemd/system/evhost.service")" = /dev/null ] || fail "the removal did not mask the unit"
scratch_dpkg "$root" -P evhost >"$work/dpkg-purge.log" 2>&1 || {
  cat "$work/dpkg-purge.log" >&2
  fail "dpkg -P failed"
}
# (the removal masks the unit, the purge unmasks it and forgets its state)
for f in usr/bin/evhost usr/lib/evhost/plugins/product.so etc/evhost/jollyjet.yaml lib/systemd/system/evhost.service \
  etc/systemd/system/evhost.service var/lib/systemd/deb-systemd-helper-enabled/evhost.service.dsh-also; do
  [ ! -e "$root/$f" ] || fail "$f is still there after the purge"
done

step "evhost-dev builds its example"
dpkg-deb -x "$sdk" "$work/sdk"
if ! cmake -S "$work/sdk/usr/share/doc/evhost-dev/example" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/sdk/usr" \
  -DCMAKE_BUILD_TYPE=Release >"$work/example.log" 2>&1 || ! cmake --build "$work/example" >>"$work/example.log" 2>&1; then
  cat "$work/example.log" >&2
  fail "the SDK's example does not build against the extracted evhost-dev"
fi
[ -f "$work/example/hello.so" ] || fail "no hello.so from the SDK's example"

step "the host is as it was"
host_state >"$work/host-after"
diff -u "$work/host-before" "$work/host-after" >&2 || fail "the packaging test changed this system (above)"
step "packages: ok"
