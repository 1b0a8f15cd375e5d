#!/usr/bin/env bash
# Builds the Debian sid chroot that the OPTIONAL extended interop tests
# (tests/interop/extended/test_extended_{clients,families}.py, ctest names
# interop.extended_clients and interop.extended_families) take their newer clients from:
# python3-torch 2.x, python3-safetensors and python3-transformers, which Debian 12 does not have.
# See docs/interop.md.
#
#   tests/tools/make_extended_chroot.sh [ROOT]     ROOT defaults to $CW_EXTENDED_CHROOT, then
#                                                  ~/.cache/convert_weight/sid (the test's default)
#
# Idempotent: does nothing when ROOT already imports the three packages; installs them when ROOT
# is a complete chroot lacking them; otherwise debootstraps into ROOT.partial and renames it to
# ROOT when done, so an interrupted run never leaves a half-built chroot under ROOT.
#
# Needs root, network access to a Debian mirror ($CW_DEBIAN_MIRROR, default deb.debian.org) and
# about 2.1 GB of disk (mostly torch and the libraries it links); a run
# takes a few minutes. Remove the chroot with `rm -rf --one-file-system ROOT` (nothing is left
# mounted in it: the test runs `chroot ROOT /usr/bin/python3 ...` without mounting /proc).
set -euo pipefail

root="${1:-${CW_EXTENDED_CHROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/convert_weight/sid}}"
mirror="${CW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite="${CW_EXTENDED_SUITE:-sid}"
packages=(python3-torch python3-safetensors python3-transformers)

if [ "$(id -u)" -ne 0 ]; then
  echo "make_extended_chroot.sh: run as root (debootstrap and chroot need it)" >&2
  exit 1
fi

# Prints the client versions; fails when the chroot cannot import them.
clients_ok() {
  [ -x "$root/usr/bin/python3" ] || return 1
  chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin UCX_LOG_LEVEL=fatal /usr/bin/python3 -c \
    'import torch, safetensors, transformers; print("torch", torch.__version__, "safetensors", safetensors.__version__, "transformers", transformers.__version__)' \
    2>/dev/null
}

if versions="$(clients_ok)"; then
  echo "$root is ready: $versions"
  exit 0
fi

if [ -x "$root/usr/bin/apt-get" ] && [ -s "$root/var/lib/dpkg/status" ]; then
  # A complete chroot that lacks (some of) the packages: install them inside.
  echo "installing ${packages[*]} in $root" >&2
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    apt-get -o Acquire::Check-Valid-Until=false update -qq
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${packages[@]}"
elif [ -e "$root" ] && [ -n "$(ls -A "$root" 2>/dev/null)" ]; then
  echo "make_extended_chroot.sh: $root exists but is not a complete chroot; remove it" \
    "(rm -rf --one-file-system $root) and run again" >&2
  exit 1
else
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "installing debootstrap" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
      debian-archive-keyring >/dev/null
  fi
  partial="$root.partial"
  if [ -e "$partial" ]; then
    # Left by an interrupted run: debootstrap mounts proc and sys inside while installing.
    for m in $(findmnt -rn -o TARGET | grep -F "$partial/" | sort -r); do
      umount -l "$m" || true
    done
    rm -rf --one-file-system "$partial"
  fi
  mkdir -p "$(dirname "$root")"
  include="$(IFS=,; echo "${packages[*]}")"
  echo "debootstrap $suite into $partial (about 2.1 GB, a few minutes)" >&2
  debootstrap --variant=minbase --include="$include" "$suite" "$partial" "$mirror"
  if [ -d "$root" ]; then rmdir "$root"; fi  # an empty folder in the way
  mv "$partial" "$root"
fi

if ! versions="$(clients_ok)"; then
  echo "make_extended_chroot.sh: $root still cannot import torch, safetensors and transformers" >&2
  exit 1
fi
echo "$root is ready: $versions ($(du -sh "$root" 2>/dev/null | cut -f1))"
