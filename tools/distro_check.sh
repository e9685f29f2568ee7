#!/usr/bin/env bash
# The README's two commands on a clean Debian root file system, as a new user on that system would run them
# (opt-in, like the CUDA smoke test; not part of the test command). Run as root on a Debian machine:
#
#   bash tools/distro_check.sh trixie            # Debian 13 (or bookworm: Debian 12)
#   bash tools/distro_check.sh trixie --cuda13   # then also PARK3D_CUDA=13 PARK3D_CUDNN=9 from an empty cache
#   bash tools/distro_check.sh trixie --cuda13-only  # that CUDA step alone, in the root a previous check left
#                                                    # (a fresh clone of HEAD, an empty CUDA cache and venv)
#
# Steps, each timed, with its full log in $PARK3D_DISTRO_OUT (default /tmp/park3dpose-distro-<suite>):
#   rootfs   debootstrap --variant=minbase <suite> from Debian's archive into a fresh folder (no CUDA packages)
#   clone    a clean clone of this repository's HEAD into /root/park3dpose inside it (committed work only)
#   demo     bash tools/setup.sh && .venv/bin/python tools/demo.py        (the README's first command)
#   tests    bash tools/setup.sh && .venv/bin/python -m pytest -q tests   (the README's second command)
#   cuda13   PARK3D_CUDA=13 PARK3D_CUDNN=9 bash tools/setup.sh, with its own empty cache and venv (--cuda13)
# The chroot runs in a private mount namespace (its /proc, /dev and /dev/shm vanish when the script ends). The
# summary (summary.txt) lists each step's time and exit code and the demo's results table.
set -euo pipefail

SUITE=${1:?usage: tools/distro_check.sh SUITE [--cuda13]   (SUITE: bookworm or trixie)}
CUDA13=0; ONLY=0
case "${2:-}" in --cuda13) CUDA13=1 ;; --cuda13-only) CUDA13=1; ONLY=1 ;; '') ;;
  *) echo "distro_check: the second argument is --cuda13 or --cuda13-only" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${PARK3D_DISTRO_OUT:-/tmp/park3dpose-distro-$SUITE}
FS=$OUT/rootfs
MIRROR=${PARK3D_DEBIAN_MIRROR:-http://deb.debian.org/debian}

[ "$(id -u)" = 0 ] || { echo "distro_check: run as root (debootstrap and chroot need it)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "distro_check: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }
case "$SUITE" in bookworm|trixie) ;; *) echo "distro_check: SUITE is bookworm (Debian 12) or trixie (Debian 13)" >&2; exit 2 ;; esac

mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt; [ $ONLY = 1 ] && SUMMARY=$OUT/summary-cuda13.txt
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME CMD...: run, time, log; a failing step is recorded and ends the check.
step() {
  local name=$1 t0=$SECONDS rc=0; shift
  "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  note "$name: exit $rc in $((SECONDS - t0)) s (log: $OUT/$name.log)"
  if [ $rc != 0 ]; then tail -n 30 "$OUT/$name.log"; exit 1; fi
}

make_rootfs() {
  rm -rf "$FS"
  debootstrap --variant=minbase "$SUITE" "$FS" "$MIRROR" &&
  cp /etc/resolv.conf "$FS/etc/resolv.conf" || return 1
  # the host's own certificate authorities (a proxy's, say), which the set-up's ca-certificates then trusts, so
  # that the root reaches PyPI where the host does; nothing else of the host's goes in
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$FS/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$FS/usr/local/share/ca-certificates/"
  fi
}

clone() {
  rm -rf "$FS/root/park3dpose"
  git clone -q "$ROOT" "$FS/root/park3dpose"
  git -C "$FS/root/park3dpose" log -1 --format='%H %s' | cut -c1-120
}

# in_root CMD: CMD by bash in the repository's clean clone inside the chroot, as root, with a minimal environment
in_root() {
  unshare --mount --propagation private bash -c '
    fs=$1; shift
    mount -t proc proc "$fs/proc"
    mount --rbind /dev "$fs/dev"
    mount -t tmpfs -o size=4g shm "$fs/dev/shm"
    exec chroot "$fs" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 TERM=dumb bash -c "cd /root/park3dpose && $1"' _ "$FS" "$1"
}

note "distro_check $SUITE on $(uname -m), host $(. /etc/os-release; echo "$PRETTY_NAME"), $(nproc) cores, $(date -u +%FT%TZ)"
if [ $ONLY = 1 ]; then
  [ -x "$FS/bin/bash" ] || { echo "distro_check: no root in $FS; run without --cuda13-only first" >&2; exit 2; }
  note "reusing the root in $FS: $(in_root 'dpkg-query -W -f="\${Package}\n" | grep -c "^nvidia-\|^cuda-\|^libcud" || true') Debian CUDA packages installed"
else
step rootfs make_rootfs
fi
note "system: $(. "$FS/etc/os-release"; echo "$PRETTY_NAME") (debian_version $(cat "$FS/etc/debian_version"))"
step clone clone
if [ $ONLY = 0 ]; then
step demo in_root "bash tools/setup.sh && .venv/bin/python tools/demo.py"
note "python: $(in_root '.venv/bin/python -c "import sys, numpy; print(sys.version.split()[0], \"numpy\", numpy.__version__)"')"
note "gcc: $(in_root 'gcc -dumpfullversion') boost: $(in_root 'dpkg-query -W -f="\${Version}" libboost-python-dev')"
sed -n '/P1/,$p' "$OUT/demo.log" | head -n 40 >> "$SUMMARY" || true
step tests in_root "bash tools/setup.sh && .venv/bin/python -m pytest -q tests"
tail -n 1 "$OUT/tests.log" | tee -a "$SUMMARY"
fi
if [ $CUDA13 = 1 ]; then
  in_root 'rm -rf /root/cache-cuda13 /root/venv-cuda13'
  step cuda13 in_root "PARK3D_CUDA=13 PARK3D_CUDNN=9 PARK3D_CACHE=/root/cache-cuda13 PARK3D_VENV=/root/venv-cuda13 bash tools/setup.sh"
  grep -E '^\[setup\] (build|ready)' "$OUT/cuda13.log" | tee -a "$SUMMARY" || true
fi
note "done: $SUITE passed every step"
