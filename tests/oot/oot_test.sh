#!/usr/bin/env bash
# Installs the SDK into a temporary prefix, builds sdk/example (a plugin in C)
# as its own CMake project against that prefix only -- and once more with
# plain cc and pkg-config -- then has the host load and call both.
set -euo pipefail
build_dir=$1 source_dir=$2 smoke=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" --component sdk >/dev/null
test -f "$work/prefix/include/evh/plugin.h"
test -f "$work/prefix/include/evh/plugin.hpp"

# Copy the example out of the tree so nothing can reach host sources.
cp -r "$source_dir/sdk/example" "$work/src"
cmake -S "$work/src" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" >/dev/null
"$smoke" "$work/build/hello.so"

pcdir=$(find "$work/prefix" -name evh-sdk.pc -printf '%h\n' | head -n1)
cflags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags evh-sdk)
# Both packages carry the header's ABI version (the SDK's version).
header="$work/prefix/include/evh/plugin.h"
abi=$(sed -n 's/^#define EVH_ABI_MAJOR \([0-9]*\).*/\1/p' "$header").$(sed -n 's/^#define EVH_ABI_MINOR \([0-9]*\).*/\1/p' "$header")
pc_version=$(PKG_CONFIG_PATH="$pcdir" pkg-config --modversion evh-sdk)
[ "$pc_version" = "$abi" ] || { echo "evh-sdk.pc says $pc_version, plugin.h ABI $abi" >&2; exit 1; }
cmake_version_file=$(find "$work/prefix" -name evh-sdkConfigVersion.cmake | head -n1)
grep -q "set(PACKAGE_VERSION \"$abi\")" "$cmake_version_file" ||
  { echo "$cmake_version_file does not say $abi" >&2; exit 1; }
cc -std=c99 -shared -fPIC $cflags -Wall -Wextra -Werror -o "$work/hello_pc.so" "$work/src/hello.c"
"$smoke" "$work/hello_pc.so"
# Only the entry symbol is exported.
exported=$(nm -D --defined-only "$work/build/hello.so" | awk '$2 == "T" {print $3}')
if [ "$exported" != "evh_plugin_entry" ]; then
  echo "unexpected exported symbols: $exported" >&2
  exit 1
fi
echo "out-of-tree plugin: ok"
