#!/usr/bin/env bash
# Fetch Debian's kernel package (which carries the vivid virtual V4L2 driver)
# into a cache directory for the qemu-based capture test, without installing it.
#
# usage: vivid-kernel.sh CACHE_DIR
#
# Result: CACHE_DIR/kernel/current -> <kernel-release>/ holding vmlinuz,
# modules/*.ko (flat, uncompressed) and SOURCE (package, version, sha256).
#
# The package is pinned by name, version and sha256. Debian removes old
# kernel ABIs from the mirror after point releases; if the pinned version is
# gone, the script falls back to whatever linux-image-amd64 depends on now,
# says so loudly and records what it used in SOURCE (apt itself still checks
# the download against the signed archive index).
set -euo pipefail

PIN_PKG=linux-image-6.1.0-56-amd64
PIN_VER=6.1.192-2
PIN_SHA256=a86e2049672f52354c4536a089203b6c82639420424d31c91cf31a181fd4d8f1
MODULES=(mc rc-core cec videodev v4l2-dv-timings v4l2-tpg videobuf2-common
  videobuf2-memops videobuf2-v4l2 videobuf2-vmalloc videobuf2-dma-contig vivid)

cache=${1:?usage: vivid-kernel.sh CACHE_DIR}
dir=$cache/kernel
mkdir -p "$dir"
cd "$dir"

pkg=$PIN_PKG ver=$PIN_VER want=$PIN_SHA256
deb=${pkg}_${ver}_amd64.deb
if [ ! -f "$deb" ]; then
  if ! apt-get download "$pkg=$ver" >/dev/null 2>apt-download.log; then
    echo "vivid-kernel: pinned $pkg=$ver is not on the mirror any more ($(tail -1 apt-download.log))" >&2
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    ver=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')
    [ -n "$pkg" ] && [ -n "$ver" ] || { echo "vivid-kernel: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
    echo "vivid-kernel: FALLING BACK to $pkg=$ver; update PIN_* in $0" >&2
    want=""
    deb=${pkg}_${ver}_amd64.deb
    [ -f "$deb" ] || apt-get download "$pkg=$ver" >/dev/null
  fi
fi
got=$(sha256sum "$deb" | cut -d' ' -f1)
if [ -n "$want" ] && [ "$got" != "$want" ]; then
  echo "vivid-kernel: sha256 mismatch for $deb: got $got want $want" >&2
  rm -f "$deb"
  exit 1
fi

release=${pkg#linux-image-}
out=$dir/$release
if [ ! -f "$out/.stamp" ]; then
  rm -rf "$out.tmp" && mkdir -p "$out.tmp/x" "$out.tmp/modules"
  paths=("./boot/vmlinuz-$release")
  list=$(dpkg-deb -c "$deb" | awk '{print $6}')
  for m in "${MODULES[@]}"; do
    p=$(grep -E "/$m\.ko(\.xz)?$" <<<"$list" | head -1)
    [ -n "$p" ] || { echo "vivid-kernel: module $m not in $deb" >&2; exit 1; }
    paths+=("$p")
  done
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out.tmp/x" "${paths[@]}"
  mv "$out.tmp/x/boot/vmlinuz-$release" "$out.tmp/vmlinuz"
  find "$out.tmp/x" -name '*.ko.xz' -exec xz -d {} +
  find "$out.tmp/x" -name '*.ko' -exec mv {} "$out.tmp/modules/" \;
  rm -rf "$out.tmp/x"
  printf '%s\n' "${MODULES[@]}" >"$out.tmp/modules/order"
  printf 'package=%s\nversion=%s\nsha256=%s\n' "$pkg" "$ver" "$got" >"$out.tmp/SOURCE"
  touch "$out.tmp/.stamp"
  rm -rf "$out" && mv "$out.tmp" "$out"
fi
ln -sfn "$release" "$dir/current"
echo "vivid-kernel: $dir/current -> $release ($pkg $ver)"
