#!/bin/sh
# Builds the lab node's kernel and initrd from Debian packages only, for
# `bootherd lab boot`, its tests and bench/boot:
#   vmlinuz     from the kernel package linux-image-amd64 depends on (EFI stub, so BIOS and UEFI)
#   initrd.img  busybox-static, rdate (an SNTP client) with its libraries, the
#               NIC drivers (e1000, virtio_net and what they depend on), and
#               boot-assets/lab-initrd/{init,udhcpc.script}
#   iscsi.img   a second initrd for nodes whose root is on iSCSI (the kernel unpacks
#               both): open-iscsi's iscsistart with its libraries, and the SCSI,
#               iSCSI and ext4 modules (what they depend on first)
#   golden.img  the golden root disk those nodes' copies are made of: an ext2
#               filesystem (mke2fs -d, no loop mount) with busybox, rdate, the same
#               init as /sbin/init, and /etc/bootherd-golden, a marker only this image
#               holds (also in golden.marker beside it)
# Packages come from the configured Debian mirror with `apt-get download`,
# nothing else is fetched. The output is cached under boot-assets/lab/<key>/,
# keyed by the package versions and the sources of this image, so a second
# run is instant. Prints the output directory on stdout.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
say() { printf 'build-lab-image: %s\n' "$*" >&2; }

# One build at a time (tests start labs in parallel): the second waits, then finds the cache.
mkdir -p boot-assets/lab
exec 9>boot-assets/lab/.lock
flock 9

candidate() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p'; }
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1; }
kernel=$(kernel_package)
if [ -z "$kernel" ] && [ "$(id -u)" = 0 ]; then
  # A fresh machine (or a CI image) may have no package lists yet.
  say "no package lists: apt-get update"
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  kernel=$(kernel_package)
fi
[ -n "$kernel" ] || { say "apt-cache knows no linux-image-amd64: run apt-get update (as root)"; exit 1; }
# open-iscsi and the libraries its iscsistart links (libcrypto, libkmod and theirs).
pkgs="$kernel busybox-static rdate libbsd0 libmd0 libc6 open-iscsi libopeniscsiusr libssl3 libkmod2 liblzma5 libzstd1"
versions=""
for p in $pkgs; do
  v=$(candidate "$p")
  [ -n "$v" ] && [ "$v" != "(none)" ] || { say "no installable version of $p: run apt-get update"; exit 1; }
  versions="$versions$p=$v
"
done
key=$( { printf '%s' "$versions"; cat scripts/build-lab-image.sh boot-assets/lab-initrd/*; } | sha256sum | cut -c1-16)
out=boot-assets/lab/$key
if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] && [ -f "$out/iscsi.img" ] && [ -f "$out/golden.img" ]; then echo "$root/$out"; exit 0; fi
command -v mke2fs >/dev/null || { say "mke2fs is missing: install Debian's e2fsprogs (scripts/setup.sh)"; exit 1; }

say "building $out from: $(echo $pkgs)"
work=$(mktemp -d "boot-assets/lab/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get -q -o APT::Sandbox::User=root download $versions >/dev/null)

x=$work/x
mkdir -p "$x"
for d in "$work"/*.deb; do
  case $d in "$work/${kernel}"_*) continue ;; esac
  dpkg-deb -x "$d" "$x"
done
bb=$x/bin/busybox
# Only the kernel image and the drivers the images load (network, virtio; SCSI, iSCSI, ext4 and
# the block, crypto and library modules they depend on): the whole package is 400 MB unpacked.
dpkg-deb --fsys-tarfile "$work/${kernel}"_*.deb | tar -x -C "$x" --wildcards \
  './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/net/*' './lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/net/core/*' \
  './lib/modules/*/kernel/drivers/scsi/*' './lib/modules/*/kernel/block/*' './lib/modules/*/kernel/lib/*' './lib/modules/*/kernel/crypto/*' \
  './lib/modules/*/kernel/fs/ext4/*' './lib/modules/*/kernel/fs/jbd2/*' './lib/modules/*/kernel/fs/mbcache.ko'

# The initrd's tree.
r=$work/root
mkdir -p "$r/bin" "$r/etc" "$r/lib/modules" "$r/proc" "$r/sys" "$r/dev" "$r/run" "$r/tmp"
cp "$bb" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
cp boot-assets/lab-initrd/init "$r/init"
cp boot-assets/lab-initrd/udhcpc.script "$r/etc/udhcpc.script"
chmod 755 "$r/init" "$r/etc/udhcpc.script"
printf 'root:x:0:0:root:/:/bin/sh\n' > "$r/etc/passwd"
printf 'ntp\t\t123/udp\n' > "$r/etc/services"

# Dynamically linked programs: copy one and the libraries the packaged loader says it needs,
# except those the tree already has (iscsi.img is unpacked over initrd.img).
libpath=$x/lib/x86_64-linux-gnu:$x/usr/lib/x86_64-linux-gnu
# The package's /lib64 link is absolute (it would name the build host's loader): use the file itself.
ld=$x/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
add_program() { # add_program TREE FILE-IN-PACKAGES DESTINATION [LIBRARIES-ALREADY-THERE]
  local tree=$1 file=$2 dest=$3 have=${4:-} list
  mkdir -p "$tree/$(dirname "$dest")" "$tree/lib64" "$tree/lib/x86_64-linux-gnu"
  cp "$file" "$tree/$dest"
  [ -n "$have" ] || cp -L "$ld" "$tree/lib64/ld-linux-x86-64.so.2"
  list=$("$ld" --library-path "$libpath" --list "$file")
  if echo "$list" | grep -q 'not found'; then say "$(basename "$file") needs a library none of $pkgs has: $list"; exit 1; fi
  echo "$list" | awk '$2 == "=>" && $1 !~ /\// { print $1, $3 }' | while read -r name lib; do
    case " $have " in *" $name "*) continue ;; esac
    cp -L "$lib" "$tree/lib/x86_64-linux-gnu/$name"
  done
}
# Not on $PATH: busybox has an rdate applet (RFC 868 only) of the same name.
add_program "$r" "$x/usr/sbin/rdate" usr/libexec/rdate

# Modules with their dependencies first (from each module's depends= field), in load order.
moddir=$(echo "$x"/lib/modules/*)
order=""
add_module() { # add_module DIR MODULE...: copies each (dependencies first) into DIR, appends to $order
  local dir=$1 m f dep
  shift
  for m in "$@"; do
    case " $order " in *" $m "*) continue ;; esac
    f=$(find "$moddir" -name "$m.ko" | head -n 1)
    [ -n "$f" ] || { say "module $m is not in $kernel"; exit 1; }
    for dep in $("$bb" strings "$f" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$dir" "$dep"; done
    cp "$f" "$dir/$m.ko"
    order="$order $m"
  done
}
add_module "$r/lib/modules" e1000 virtio_pci virtio_net
printf '%s\n' $order > "$r/lib/modules/load-order"
nic_order=$order

# iscsi.img: iscsistart, and the modules an iSCSI root needs, loaded by /init when the kernel
# command line has netroot=iscsi:... (after the NIC's, so they go in a directory of their own).
# crc32c_generic: ext4 asks the crypto API for crc32c (a soft dependency depends= does not list).
s=$work/iscsi
mkdir -p "$s/lib/modules/iscsi"
add_program "$s" "$x/sbin/iscsistart" usr/sbin/iscsistart "libc.so.6"
rmdir "$s/lib64"
order=""
add_module "$s/lib/modules/iscsi" sd_mod iscsi_tcp crc32c_generic ext4
printf '%s\n' $order > "$s/lib/modules/iscsi/load-order"
iscsi_order=$order

# golden.img: the initrd's programs as a root filesystem, the same init as /sbin/init (it runs the
# rest of the checks from there), and a marker no other image has.
g=$work/golden
cp -a "$r" "$g"
rm -rf "$g/init" "$g/lib/modules"
mkdir -p "$g/sbin" "$g/newroot"
cp boot-assets/lab-initrd/init "$g/sbin/init"
chmod 755 "$g/sbin/init"
marker="bootherd lab golden image $key"
echo "$marker" > "$g/etc/bootherd-golden"
: > "$g/etc/resolv.conf"
# 16 MiB: the programs take ~5 MiB; each node's copy is sparse.
mke2fs -q -F -t ext2 -L bootherd-golden -E root_owner=0:0 -d "$g" "$work/golden.img" 16M

cp "$x"/boot/vmlinuz-* "$work/vmlinuz"
pack() { # pack TREE IMAGE: a gzipped newc cpio archive, owned by root, in a stable order
  (cd "$1" && find . | sort | "$root/$work/x/bin/busybox" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -9 -n > "$2"
}
pack "$r" "$work/initrd.img"
pack "$s" "$work/iscsi.img"
echo "$marker" > "$work/golden.marker"
printf '%s' "$versions" > "$work/versions.txt"
echo "$nic_order" | sed 's/^ /modules: /' >> "$work/versions.txt"
echo "$iscsi_order" | sed 's/^ /iscsi modules: /' >> "$work/versions.txt"

mkdir -p "$work/out"
mv "$work/vmlinuz" "$work/initrd.img" "$work/iscsi.img" "$work/golden.img" "$work/golden.marker" "$work/versions.txt" "$work/out/"
rm -rf "$out"  # a build cut short left a partial one
mv -T "$work/out" "$out"
say "built $out ($(du -h "$out/vmlinuz" | cut -f1) kernel, $(du -h "$out/initrd.img" | cut -f1) initrd, $(du -h "$out/iscsi.img" | cut -f1) iSCSI initrd, $(du -h --apparent-size "$out/golden.img" | cut -f1) golden disk)"
echo "$root/$out"
