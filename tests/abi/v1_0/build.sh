#!/bin/sh
# Rebuilds abi10_recorder.so -- ONLY from the ABI 1.0 header (git show
# <commit>:sdk/include/evh/plugin.h at a commit where EVH_ABI_MINOR is 0),
# never from a newer one: the point of the binary is to be what a stranger
# built against 1.0. It was built on Debian 12 (x86_64, gcc 12) with:
#   cc -std=c99 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror \
#      -I <dir holding evh/plugin.h at 1.0> abi10_recorder.c -o abi10_recorder.so
set -eu
here=$(cd "$(dirname "$0")" && pwd)
include=${1:?usage: build.sh <include dir holding evh/plugin.h of ABI 1.0>}
grep -q '#define EVH_ABI_MINOR 0 ' "$include/evh/plugin.h" || { echo "not the 1.0 header: $include" >&2; exit 1; }
cc -std=c99 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -I "$include" \
  "$here/abi10_recorder.c" -o "$here/abi10_recorder.so"
