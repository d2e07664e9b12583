# Shared by scripts/run and scripts/test: dependencies and the build.
# shellcheck shell=bash

EVH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12 packages evhost needs to build, test and run.
EVH_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libuv1-dev libhiredis-dev libssl-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libsimdjson-dev uuid-dev
  libh2o-dev libcli11-dev libelf-dev libmimalloc-dev libsystemd-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcurl4-openssl-dev
  redis-server redis-tools openssl
)

# Each step says when it began, in seconds since the script started (bash's
# SECONDS): a CI log then shows where its time went.
evh_log() { printf '\033[1m==> %s\033[0m (%ds)\n' "$*" "$SECONDS" >&2; }

# Installs whatever of EVH_PACKAGES is missing (apt-get; as root or via sudo).
evh_install_deps() {
  local missing=()
  for p in "${EVH_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  evh_log "installing: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Packaging may start a system redis-server; evhost's scripts and tests
  # never use it (they start their own on free ports).
}

# evh_build DIR [cmake args...]: configures (once) and builds everything.
# Under umask 022, whatever the caller's: evhost refuses plugins in folders
# writable by group or others (docs/config.md, "Plugin trust"), and the build
# creates the plugin folders.
evh_build() {
  local dir=$1
  shift
  (
    umask 022
    if [ ! -f "$dir/build.ninja" ]; then
      evh_log "configuring $dir"
      cmake -S "$EVH_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
    fi
    evh_log "building $dir"
    cmake --build "$dir" -j "$(nproc)"
  )
}
