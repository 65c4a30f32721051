#!/bin/sh
# Builds the native helpers native/*.c into <out dir> (default native/build)
# when a source is newer than its .node: for setup.sh (a checkout) and
# package.sh (the .deb, built for the machine that builds it).
set -eu
cd "$(dirname "$0")/.."
out_dir=${1:-native/build}
say() { printf 'setup: %s\n' "$*" >&2; }
# udp_socket (binding options dgram lacks), udp_batch (batched I/O for DNS, DHCP, TFTP),
# sendfile_pump (HTTP boot file bodies by sendfile(2) off the event loop), sd_notify (systemd readiness)
for helper in udp_socket udp_batch sendfile_pump sd_notify; do
  out=$out_dir/$helper.node
  stale=0
  for src in native/$helper.c native/*.h; do [ "$src" -nt "$out" ] && stale=1; done
  if [ ! -f "$out" ] || [ $stale = 1 ]; then
    say "building the native helper $helper"
    nodeinc=""
    for d in "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node" /usr/include/node /usr/local/include/node; do
      [ -f "$d/node_api.h" ] && { nodeinc=$d; break; }
    done
    [ -n "$nodeinc" ] || { say "node_api.h not found: install Node's headers"; exit 1; }
    mkdir -p "$out_dir"
    cc -O2 -Wall -shared -fPIC -DNODE_GYP_MODULE_NAME=$helper -I"$nodeinc" -o "$out" native/$helper.c
  fi
done
