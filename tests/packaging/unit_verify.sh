#!/usr/bin/env bash
# The systemd unit as `cmake --install` makes it (packaging/systemd/evhost.service.in
# with the install prefix) loads in systemd without a complaint: installed into
# a temporary prefix, so its ExecStart= names an evhost that exists. And a
# second install keeps an edited configuration.
# systemd-analyze verify prints unknown keys and bad values but exits 0 for
# them: any output fails.
# Usage: unit_verify.sh BUILD_DIR SYSTEMD_ANALYZE
set -euo pipefail
build_dir=$1 analyze=$2
work=$(mktemp -d /tmp/evh-unit-XXXXXX)
trap 'rm -rf "$work"' EXIT

(umask 022 && cmake --install "$build_dir" --prefix "$work/prefix" --component runtime) >"$work/install.log"
unit="$work/prefix/lib/systemd/system/evhost.service"
grep -qx "ExecStart=$work/prefix/bin/evhost --config $work/prefix/etc/evhost/jollyjet.yaml" "$unit" || {
  echo "unexpected ExecStart in $unit: $(grep '^ExecStart=' "$unit")" >&2
  exit 1
}
[ -f "$work/prefix/etc/evhost/jollyjet.yaml" ] && [ -f "$work/prefix/lib/sysusers.d/evhost.conf" ]
# An edited configuration is kept by the next install, which puts its own beside it.
echo "# edited" >>"$work/prefix/etc/evhost/jollyjet.yaml"
(umask 022 && cmake --install "$build_dir" --prefix "$work/prefix" --component runtime) >"$work/install.log"
if [ "$(tail -n1 "$work/prefix/etc/evhost/jollyjet.yaml")" != "# edited" ] ||
  ! cmp -s "$work/prefix/etc/evhost/jollyjet.yaml.new" <(head -n -1 "$work/prefix/etc/evhost/jollyjet.yaml"); then
  echo "a second install did not keep the edited jollyjet.yaml beside its own jollyjet.yaml.new" >&2
  exit 1
fi
status=0
out=$("$analyze" verify "$unit" 2>&1) || status=$?
printf '%s' "$out"
[ "$status" -eq 0 ] && [ -z "$out" ]
