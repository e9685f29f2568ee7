#!/usr/bin/env bash
# The README's two commands on a clean Debian root file system, as a new user on that system would run them
# (opt-in, like the CUDA smoke test; not part of the test command). Run as root on a Debian machine:
#
#   bash tools/distro_check.sh trixie            # Debian 13 (or bookworm: Debian 12)
#   bash tools/distro_check.sh noble             # Ubuntu 24.04 (or jammy: Ubuntu 22.04), from Ubuntu's archive
#   bash tools/distro_check.sh trixie --cuda13   # then also PARK3D_CUDA=13 PARK3D_CUDNN=9 from an empty cache
#   bash tools/distro_check.sh trixie --cuda13-only  # that CUDA step alone, in the root a previous check left
#                                                    # (a fresh clone of HEAD, an empty CUDA cache and venv)
#   bash tools/distro_check.sh trixie --kit      # the GPU machines' kit on that system's Python (tools/device_e2e.sh
#                                                # --cpu), in the root a previous check left or a new one
#
# Steps, each timed, with its full log in $PARK3D_DISTRO_OUT (default /tmp/park3dpose-distro-<suite>):
#   rootfs   debootstrap --variant=minbase <suite> from Debian's archive into a fresh folder (no CUDA packages);
#            for Ubuntu from Ubuntu's archive, checked with Ubuntu's archive keys (Debian's ubuntu-keyring package,
#            pinned by hash below), and apt's sources then as an Ubuntu install has them: main, restricted,
#            universe and multiverse, with the -updates and -security pockets
#   clone    a clean clone of this repository's HEAD into /root/park3dpose inside it (committed work only)
#   demo     bash tools/setup.sh && .venv/bin/python tools/demo.py        (the README's first command)
#   tests    bash tools/setup.sh && .venv/bin/python -m pytest -q tests   (the README's second command)
#   cuda13   PARK3D_CUDA=13 PARK3D_CUDNN=9 bash tools/setup.sh, with its own empty cache and venv (--cuda13)
#   --kit: kit-python  g++, python3-dev and python3-venv from the suite, a venv of tests/data/gpu_machine_python.txt
#          bundle      bash tools/device_bundle.sh 2 here (the route-13 builds from this machine's cache)
#          kit         bash tools/device_e2e.sh --cpu in the root with that venv's Python (the cache bound read-only)
#          parity      the kit's per-frame poses against this machine's CPU build on the same weights and frames
# The chroot runs in a private mount namespace (its /proc, /dev and /dev/shm vanish when the script ends). The
# summary (summary.txt) lists each step's time and exit code and the demo's results table.
set -euo pipefail

SUITE=${1:?usage: tools/distro_check.sh SUITE [--cuda13 | --cuda13-only | --kit]   (SUITE: bookworm, trixie, jammy or noble)}
CUDA13=0; ONLY=0; KIT=0
case "${2:-}" in --cuda13) CUDA13=1 ;; --cuda13-only) CUDA13=1; ONLY=1 ;; --kit) KIT=1; ONLY=1 ;; '') ;;
  *) echo "distro_check: the second argument is --cuda13, --cuda13-only or --kit" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${PARK3D_DISTRO_OUT:-/tmp/park3dpose-distro-$SUITE}
FS=$OUT/rootfs
case "$SUITE" in
  bookworm|trixie) DISTRO=debian; MIRROR=${PARK3D_DEBIAN_MIRROR:-http://deb.debian.org/debian} ;;
  jammy|noble) DISTRO=ubuntu; MIRROR=${PARK3D_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu} ;;
  *) echo "distro_check: SUITE is bookworm (Debian 12), trixie (Debian 13), jammy (Ubuntu 22.04) or noble (Ubuntu 24.04)" >&2; exit 2 ;;
esac
# Ubuntu's archive keys, as Debian packages them (trixie's ubuntu-keyring; the hash is that of its Packages entry)
UBUNTU_KEYRING_DEB=pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1-0.2_all.deb
UBUNTU_KEYRING_SHA256=b2e7ed48431bf9e7978ae810bbdaf253093570d6e3f864e575b7c13554b81174

[ "$(id -u)" = 0 ] || { echo "distro_check: run as root (debootstrap and chroot need it)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "distro_check: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }

mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt; [ $ONLY = 1 ] && SUMMARY=$OUT/summary-cuda13.txt; [ $KIT = 1 ] && SUMMARY=$OUT/summary-kit.txt
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME CMD...: run, time, log; a failing step is recorded and ends the check.
step() {
  local name=$1 t0=$SECONDS rc=0; shift
  "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  note "$name: exit $rc in $((SECONDS - t0)) s (log: $OUT/$name.log)"
  if [ $rc != 0 ]; then tail -n 30 "$OUT/$name.log"; exit 1; fi
}

ubuntu_keyring() {
  local deb=$OUT/${UBUNTU_KEYRING_DEB##*/}
  [ -s "$deb" ] || curl -fsSL -o "$deb" "${PARK3D_DEBIAN_MIRROR:-http://deb.debian.org/debian}/$UBUNTU_KEYRING_DEB" || return 1
  echo "$UBUNTU_KEYRING_SHA256  $deb" | sha256sum -c --quiet || { rm -f "$deb"; return 1; }
  rm -rf "$OUT/ubuntu-keyring" && dpkg-deb -x "$deb" "$OUT/ubuntu-keyring"
}

make_rootfs() {
  rm -rf "$FS"
  if [ $DISTRO = ubuntu ]; then
    # every Ubuntu suite's debootstrap script is gutsy's, so a Debian host's debootstrap that predates the suite
    # still makes it
    ubuntu_keyring &&
    debootstrap --variant=minbase --keyring="$OUT/ubuntu-keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg" \
      "$SUITE" "$FS" "$MIRROR" /usr/share/debootstrap/scripts/gutsy &&
    printf 'deb %s %s main restricted universe multiverse\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE-updates" \
      "$MIRROR" "$SUITE-security" > "$FS/etc/apt/sources.list" || return 1
  else
    debootstrap --variant=minbase "$SUITE" "$FS" "$MIRROR" || return 1
  fi
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
# (BIND_CACHE=1: this machine's set-up cache read-only at the same place, for the kit's CUDA libraries)
in_root() {
  unshare --mount --propagation private bash -c '
    fs=$1 bind=$3 cache=$4
    mount -t proc proc "$fs/proc"
    mount --rbind /dev "$fs/dev"
    mount -t tmpfs -o size=4g shm "$fs/dev/shm"
    if [ "$bind" = 1 ]; then
      mkdir -p "$fs/root/.cache/park3dpose" && mount --bind -o ro "$cache" "$fs/root/.cache/park3dpose"
    fi
    exec chroot "$fs" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 TERM=dumb bash -c "cd /root/park3dpose && $2"' _ "$FS" "$1" "${BIND_CACHE:-0}" "${CACHE_ROOT:-}"
}

note "distro_check $SUITE on $(uname -m), host $(. /etc/os-release; echo "$PRETTY_NAME"), $(nproc) cores, $(date -u +%FT%TZ)"
if [ $KIT = 1 ] && [ ! -x "$FS/bin/bash" ]; then
  step rootfs make_rootfs
elif [ $ONLY = 1 ]; then
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
if [ $KIT = 1 ]; then
  CACHE_ROOT=${PARK3D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/park3dpose}
  kit_python() {
    in_root "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++ python3-dev python3-venv ca-certificates xz-utils &&
      update-ca-certificates && rm -rf /root/gpupy && python3 -m venv /root/gpupy &&
      /root/gpupy/bin/pip install -q --cert /etc/ssl/certs/ca-certificates.crt -r tests/data/gpu_machine_python.txt"
  }
  step kit-python kit_python
  note "python: $(in_root '/root/gpupy/bin/python -c "import sys, numpy; print(sys.version.split()[0], \"numpy\", numpy.__version__)"'), gcc $(in_root 'gcc -dumpfullversion')"
  step bundle env PARK3D_DEVICE_DIR="$FS/root/park3dpose/.device" bash "$ROOT/tools/device_bundle.sh" 2
  rm -rf "$FS/root/e2e-out"
  BIND_CACHE=1
  step kit in_root "OUT=/root/e2e-out PYTHON=/root/gpupy/bin/python bash tools/device_e2e.sh --cpu"
  BIND_CACHE=0
  sed -n '/^- /,$p' "$FS/root/e2e-out/summary.md" >> "$SUMMARY"
  parity() {
    rm -rf "$OUT/parity" && mkdir -p "$OUT/parity" && tar xzf "$FS/root/e2e-out/walking_test_lmdb.tgz" -C "$OUT/parity" &&
    (cd "$ROOT" && .venv/bin/python -m layers.device_parity evaluate --deploy prototxt/evaluate_both.prototxt \
      --weights "$FS/root/e2e-out/final.caffemodel" --lmdb "$OUT/parity/walking_test.lmdb" --out "$OUT/parity/cpu-build.npz" &&
     .venv/bin/python -m layers.device_parity compare "$FS/root/e2e-out/poses_kit-cpu.npz" "$OUT/parity/cpu-build.npz")
  }
  step parity parity
  note "the kit on $SUITE against this machine's CPU build: $(tail -n 1 "$OUT/parity.log")"
  grep -q 'float rounding' "$OUT/parity.log" || { note "the kit's poses differ from the CPU build's"; exit 1; }
fi
note "done: $SUITE passed every step"
