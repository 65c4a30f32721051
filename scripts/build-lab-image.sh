#!/bin/sh
# Builds the lab node's kernel and initrd from Debian packages only, for
# `bootherd lab boot`, its tests and bench/boot:
#   vmlinuz     from the kernel package linux-image-amd64 depends on (EFI stub, so BIOS and UEFI)
#   initrd.img  busybox-static, rdate (an SNTP client) with its libraries, the
#               NIC drivers (e1000, virtio_net and what they depend on), and
#               boot-assets/lab-initrd/{init,udhcpc.script}
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
pkgs="$kernel busybox-static rdate libbsd0 libmd0 libc6"
versions=""
for p in $pkgs; do
  v=$(candidate "$p")
  [ -n "$v" ] && [ "$v" != "(none)" ] || { say "no installable version of $p: run apt-get update"; exit 1; }
  versions="$versions$p=$v
"
done
key=$( { printf '%s' "$versions"; cat scripts/build-lab-image.sh boot-assets/lab-initrd/*; } | sha256sum | cut -c1-16)
out=boot-assets/lab/$key
if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then echo "$root/$out"; exit 0; fi

say "building $out from: $(echo $pkgs)"
work=$(mktemp -d "boot-assets/lab/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get -q -o APT::Sandbox::User=root download $versions >/dev/null)

x=$work/x
mkdir -p "$x"
for d in "$work"/busybox-static_*.deb "$work"/rdate_*.deb "$work"/libbsd0_*.deb "$work"/libmd0_*.deb "$work"/libc6_*.deb; do
  dpkg-deb -x "$d" "$x"
done
bb=$x/bin/busybox
# Only the kernel image and the network and virtio drivers: the whole package is 400 MB unpacked.
dpkg-deb --fsys-tarfile "$work/${kernel}"_*.deb | tar -x -C "$x" --wildcards \
  './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/net/*' './lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/net/core/*'

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

# rdate is dynamically linked: copy it and the libraries the packaged loader says it needs.
# Not on $PATH: busybox has an rdate applet (RFC 868 only) of the same name.
mkdir -p "$r/usr/libexec"
cp "$x/usr/sbin/rdate" "$r/usr/libexec/rdate"
libpath=$x/lib/x86_64-linux-gnu:$x/usr/lib/x86_64-linux-gnu
# The package's /lib64 link is absolute (it would name the build host's loader): use the file itself.
ld=$x/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
mkdir -p "$r/lib64" "$r/lib/x86_64-linux-gnu"
cp -L "$ld" "$r/lib64/ld-linux-x86-64.so.2"
list=$("$ld" --library-path "$libpath" --list "$x/usr/sbin/rdate")
if echo "$list" | grep -q 'not found'; then say "rdate needs a library none of $pkgs has: $list"; exit 1; fi
echo "$list" | awk '$2 == "=>" && $1 !~ /\// { print $1, $3 }' | while read -r name file; do cp -L "$file" "$r/lib/x86_64-linux-gnu/$name"; done

# NIC drivers with their dependencies first (from each module's depends= field), in load order.
moddir=$(echo "$x"/lib/modules/*)
order=""
add_module() {
  local m f dep
  for m in "$@"; do
    case " $order " in *" $m "*) continue ;; esac
    f=$(find "$moddir" -name "$m.ko" | head -n 1)
    [ -n "$f" ] || { say "module $m is not in $kernel"; exit 1; }
    for dep in $("$bb" strings "$f" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$dep"; done
    cp "$f" "$r/lib/modules/$m.ko"
    order="$order $m"
  done
}
add_module e1000 virtio_pci virtio_net
printf '%s\n' $order > "$r/lib/modules/load-order"

cp "$x"/boot/vmlinuz-* "$work/vmlinuz"
(cd "$r" && find . | sort | "$root/$work/x/bin/busybox" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -9 -n > "$work/initrd.img"
printf '%s' "$versions" > "$work/versions.txt"
echo "$order" | sed 's/^ /modules: /' >> "$work/versions.txt"

mkdir -p "$work/out"
mv "$work/vmlinuz" "$work/initrd.img" "$work/versions.txt" "$work/out/"
rm -rf "$out"  # a build cut short left a partial one
mv -T "$work/out" "$out"
say "built $out ($(du -h "$out/vmlinuz" | cut -f1) kernel, $(du -h "$out/initrd.img" | cut -f1) initrd)"
echo "$root/$out"
