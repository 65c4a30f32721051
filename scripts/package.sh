#!/bin/sh
# npm run package: dist/bootherd_<version>_<arch>.deb, built with dpkg-deb from
# this checkout without the network (docs/install.md):
#   /usr/lib/bootherd     the program (src/, protocols/, bin/), the native
#                         helpers built here, the production node_modules
#                         (those `npm ls --omit=dev` lists, copied from ./node_modules)
#   /usr/bin/bootherd     a link to /usr/lib/bootherd/bin/bootherd.mjs
#   /etc/bootherd/cluster.yaml   the example that serves nothing (a conffile)
#   /lib/systemd/system/bootherd.service, /etc/logrotate.d/bootherd
#   /var/lib/bootherd, /var/log/bootherd   made and owned by bootherd in postinst
set -eu
cd "$(dirname "$0")/.."
say() { printf 'package: %s\n' "$*" >&2; }

version=$(node -p "require('./package.json').version")
arch=$(dpkg --print-architecture)
out=${1:-dist}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
lib=$stage/usr/lib/bootherd

[ -d node_modules ] || { say "no node_modules: run npm ci (or npm run setup) first"; exit 1; }
mkdir -p "$lib" "$stage/usr/bin" "$stage/etc/bootherd" "$stage/etc/logrotate.d" "$stage/lib/systemd/system" \
  "$stage/usr/share/doc/bootherd" "$stage/var/lib/bootherd" "$stage/var/log/bootherd" "$stage/DEBIAN"

# The program, as the checkout runs it (tsx loads src/ at run time: no build step).
cp -r bin src protocols package.json LICENSE "$lib/"
mkdir -p "$lib/boot-assets" "$lib/scripts"
cp -r boot-assets/templates boot-assets/lab-initrd "$lib/boot-assets/"
cp scripts/build-lab-image.sh "$lib/scripts/"
# iPXE's loaders come from Debian's ipxe package (a dependency), where setup.sh copies them from:
# the directory is linked, not each file, as TFTP refuses links that lead out of their root.
ln -s /usr/lib/ipxe "$lib/boot-assets/ipxe"
sh scripts/build-native.sh "$lib/native/build"
ln -s ../lib/bootherd/bin/bootherd.mjs "$stage/usr/bin/bootherd"

# Production node_modules: every package npm lists without the dev ones, each
# without its own node_modules/ (the nested packages it needs are listed too).
here=$(pwd)
npm ls --omit=dev --parseable --all 2>/dev/null | while read -r dir; do
  [ "$dir" = "$here" ] && continue
  rel=${dir#"$here"/}
  mkdir -p "$lib/$rel"
  (cd "$dir" && tar -cf - --exclude=./node_modules .) | (cd "$lib/$rel" && tar -xf -)
done
[ -f "$lib/node_modules/tsx/package.json" ] || { say "npm ls listed no tsx: is node_modules complete?"; exit 1; }

install -m 644 packaging/cluster.yaml "$stage/etc/bootherd/cluster.yaml"
install -m 644 packaging/bootherd.logrotate "$stage/etc/logrotate.d/bootherd"
install -m 644 packaging/bootherd.service "$stage/lib/systemd/system/bootherd.service"
cp docs/*.md "$stage/usr/share/doc/bootherd/"
install -m 644 LICENSE "$stage/usr/share/doc/bootherd/copyright"
for s in postinst prerm postrm; do install -m 755 "packaging/$s" "$stage/DEBIAN/$s"; done
printf '/etc/bootherd/cluster.yaml\n/etc/logrotate.d/bootherd\n' > "$stage/DEBIAN/conffiles"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: bootherd
Version: $version
Architecture: $arch
Maintainer: bootherd developers <bootherd@invalid.example>
Section: net
Priority: optional
Installed-Size: $(du -sk "$stage" | cut -f1)
Depends: nodejs (>= 20), libc6, adduser, util-linux (>= 2.33), ipxe
Recommends: logrotate
Suggests: etcd-server, etcd-client, tgt | targetcli-fb
Homepage: https://github.com/bootherd/bootherd
Description: network boot server for HPC and lab clusters
 DHCP, TFTP, DNS, NTP, HTTP and iSCSI for a cluster's nodes in one program,
 from one cluster file (/etc/bootherd/cluster.yaml), run by systemd as the
 bootherd user with only CAP_NET_BIND_SERVICE and CAP_NET_ADMIN.
 .
 Needs Node.js 20 or later: on Debian 12 that is NodeSource's nodejs
 package (Debian 12's own nodejs is 18).
CONTROL
mkdir -p "$out"
deb="$out/bootherd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
say "built $deb"
echo "$deb"
