#!/bin/sh
# bootherd setup: everything the server, the tests and the benchmarks need on a
# fresh Debian 12 machine. Idempotent and quick when nothing changed, so both
# `npm start` and `npm test` run it first.
#   1. Debian packages listed in scripts/apt-packages.txt (apt-get, as root)
#   2. npm packages (npm ci, when package-lock.json changed)
#   3. the native helpers native/udp_socket.c, udp_batch.c, sendfile_pump.c and sd_notify.c
#   4. iPXE binaries from Debian's ipxe package into boot-assets/ipxe
# `setup.sh --no-apt` (npm run test:unit) skips 1 and, without the ipxe
# package, 4: what a machine without root needs for the unit tests.
set -eu
no_apt=""; [ "${1:-}" = --no-apt ] && no_apt=1
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# 1. Debian packages
wanted=$(sed -e 's/#.*//' scripts/apt-packages.txt | tr -s ' \n' '\n' | grep -v '^$' || true)
missing=""
for p in $wanted; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ] && [ -n "$no_apt" ]; then
  say "not installing (--no-apt):$missing; the tests that need them say so and skip"
elif [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages:$missing; run this script as root (sudo npm run setup)"; exit 1
  fi
  say "installing Debian packages:$missing"
  # Keep package maintainer scripts from starting daemons (kea, tftpd-hpa, chrony)
  # on the host: bootherd's tests and benchmarks start their own, in namespaces.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Other installs may hold the dpkg lock (several setups at once): wait for it.
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
fi

# 2. npm packages
if [ -L node_modules ]; then
  # A shared install (a worktree's link to another checkout's): npm ci would empty the other checkout's.
  say "node_modules is a link to $(readlink node_modules): not installing npm packages into it"
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund >/dev/null
fi

# 3. native helpers
sh scripts/build-native.sh

# 4. iPXE binaries
[ -n "$no_apt" ] && [ ! -d /usr/lib/ipxe ] && exit 0
mkdir -p boot-assets/ipxe
for f in undionly.kpxe ipxe.efi snponly.efi ipxe.pxe; do
  [ -f "boot-assets/ipxe/$f" ] || cp "/usr/lib/ipxe/$f" "boot-assets/ipxe/$f"
done
