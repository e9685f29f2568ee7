#!/usr/bin/env bash
# Idempotent set-up of everything the project runs on, on Debian 12 or 13 and Ubuntu 22.04 or 24.04 (each tested
# in a clean root, tools/distro_check.sh), with the distribution's own Python 3.10-3.13 (PYTHON= another of that
# range, where the system has Boost.Python for it):
#   apt     system packages (as root; skipped when all are installed; on Ubuntu, the universe component added
#           where apt's sources lack it)
#   venv    .venv/ at the repo root with the pinned Python dependencies
#   torch   only with PARK3D_TORCH=1: the pinned CPU build of PyTorch (requirements-torch.txt) into the venv, for
#           layers/torch_model.py, its tests and the benchmark's peer (optional: nothing else needs it)
#   caffe   BVLC Caffe from Debian's pinned source package + our patches, built once per machine into
#           ${PARK3D_CACHE:-~/.cache/park3dpose}/caffe-<key>, key = sources + patches + options + Python ABI
#           (+ the CUDA toolkit and GPU architectures for a CUDA build); its caffe_pb2 rewritten in protoc 3.20+'s
#           form where the system's protoc is older (Ubuntu 22.04), as the pinned protobuf needs
#   openblas  the OpenBLAS core, forced only where OpenBLAS's own detection falls back (layers/openblas.py)
#   link    .venv/bin/caffe and `import caffe` in the venv; the project installed editable
# CUDA: PARK3D_CUDA=auto (default: the default route where nvidia-smi sees a GPU, else off; on Debian 12, 13 in
# place of 11.8 for a GPU newer than 11.8 compiles for, where the driver runs CUDA 13), off, on (the default
# route), or a route, built on any machine, GPU or not:
#   11.8  Debian's CUDA 11.8 toolkit from apt, pinned by package version (third_party/caffe/cuda-11.8.lock)
#   13    CUDA 13.0 from NVIDIA's PyPI wheels, pinned by hash, assembled in the cache (cuda-13.lock)
# Either compiles machine code for A100 and H100, and for each GPU nvidia-smi sees that those do not cover (a
# driver too old, or a GPU older than the route compiles for, is refused before anything is installed);
# PARK3D_CUDA_ARCH="75 86", say, replaces that list.
# PARK3D_CUDNN=auto (default: 9 where a CUDA route is built and nvidia-smi sees a GPU, unless one of them is outside
#   what the route's cuDNN runs on, CUDNN_ARCH_MIN/MAX in its lock; else off), 9 or off: cuDNN 9
#   from NVIDIA's PyPI wheel, pinned by hash in the route's lock, and patches-cudnn/ (the algorithm selection
#   cuDNN 8 removed); its own cache key. On an H200 it was 1.41x (training) and 2.0x (deploy) the build without.
# PARK3D_VENV: another venv folder (e.g. one per route).
# `bash tools/setup.sh --plan` prints what it would build and install on this machine (the route, cuDNN, the GPU
# architectures, the missing Debian packages) and changes nothing.
# Each step prints its time; a failing step names itself and the path of its full log, and exits non-zero.
# Layout: the options (read_options; step_gpus, the GPU architectures; caffe_options, every other derived value and
# the cache key), one function per step, and main at the bottom, which lists the steps in order.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { [ "$QUIET" = 1 ] || echo "[setup] $*"; }
die() { echo "[setup] FAILED: $*" >&2; exit 1; }
capability() { echo "${1%?}.${1: -1}"; }  # an architecture as NVIDIA writes its compute capability: 75 -> 7.5
lock_value() { (source "$ROOT/third_party/caffe/cuda-$1.lock" && echo "${!2}"); }  # ROUTE NAME: a route's pin
driver_at_least() { [ "$(printf '%s\n%s\n' "$1" "$GPU_DRIVER" | sort -V | head -n1)" = "$1" ]; }  # VERSION

# run_step NAME LOGFILE CMD...: run CMD with its output in LOGFILE, report time, fail loudly.
run_step() {
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  if ! "$@" >"$log" 2>&1; then
    tail -n 25 "$log" >&2 || true
    die "step '$name' failed after $((SECONDS - t0)) s; full log: $log"
  fi
  say "$name: $((SECONDS - t0)) s (log: $log)"
}

# ---- options ----------------------------------------------------------------------------------------
# The environment and the pinned files; nothing below changes what these set.
read_options() {
  VENV=${PARK3D_VENV:-$ROOT/.venv}
  CACHE_ROOT=${PARK3D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/park3dpose}
  LOG_DIR=$CACHE_ROOT/logs
  # The distribution's python3 by default: pycaffe links the distribution's Boost.Python, built for that
  # interpreter alone (a python3 found first on PATH, pyenv's say, may be another minor version).
  if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
  fi
  JOBS=${PARK3D_JOBS:-$(nproc)}
  QUIET=${PARK3D_QUIET:-0}
  MARCH=${PARK3D_MARCH:-}  # default: caffe_options
  # shellcheck source=../third_party/caffe/source.lock
  source "$ROOT/third_party/caffe/source.lock"
  # shellcheck source=../third_party/caffe/build_options.env
  source "$ROOT/third_party/caffe/build_options.env"
  # The system, for what its packages allow: route 11.8 is Debian 12's own CUDA toolkit (its driver floor,
  # 450.80.02, covers every A100 / H100 driver); elsewhere the default is route 13, from PyPI, on any system.
  read -r OS_ID OS_CODENAME < <( { [ -r /etc/os-release ] && . /etc/os-release; } 2>/dev/null
                                 echo "${ID:-unknown} ${VERSION_CODENAME:-unknown}")
  if [ "$OS_ID $OS_CODENAME" = "debian bookworm" ]; then CUDA_DEFAULT_ROUTE=11.8; CUDA_ROUTES="11.8 13"; else CUDA_DEFAULT_ROUTE=13; CUDA_ROUTES="13"; fi
  APT_PACKAGES="build-essential cmake ccache curl ca-certificates xz-utils patch git
  libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev
  libgflags-dev libgoogle-glog-dev libhdf5-dev liblmdb-dev libprotobuf-dev protobuf-compiler
  libopenblas-dev libopenblas0-openmp python3-dev python3-venv"
  # The GPUs nvidia-smi sees: its driver, and each compute capability as "75" (ascending; drivers older than R510
  # do not report it, and then the build's architectures are the defaults alone).
  GPU_SEEN=0 GPU_DRIVER="" GPU_ARCHS=""
  if nvidia-smi -L >/dev/null 2>&1; then
    GPU_SEEN=1
    GPU_DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1 || true)
    GPU_ARCHS=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null \
                | grep -xE '[0-9]+\.[0-9]' | tr -d . | sort -un | paste -sd' ' || true)
  fi
  case "${PARK3D_CUDA:-auto}" in
    off|OFF|0) CUDA_ROUTE=off ;;
    auto)
      CUDA_ROUTE=off
      if [ "$GPU_SEEN" = 1 ]; then
        CUDA_ROUTE=$CUDA_DEFAULT_ROUTE
        # Debian 12: a GPU newer than route 11.8 compiles for (Blackwell) takes route 13 where the driver runs it
        local newest=${GPU_ARCHS##* } max_11_8
        if [ "$CUDA_ROUTE" = 11.8 ] && [ -n "$newest" ]; then
          max_11_8=$(lock_value 11.8 CUDA_ARCH_SUPPORTED); max_11_8=${max_11_8##* }
          if [ "$newest" -gt "$max_11_8" ] && driver_at_least "$(lock_value 13 CUDA_MIN_DRIVER)"; then
            CUDA_ROUTE=13
            say "cuda: route 13, which compiles for the GPU seen (compute capability $(capability "$newest")); Debian 12's route 11.8 stops at $(capability "$max_11_8") (PARK3D_CUDA=11.8 keeps it)"
          fi
        fi
      fi ;;
    on|ON|1) CUDA_ROUTE=$CUDA_DEFAULT_ROUTE ;;
    11.8|13) CUDA_ROUTE=$PARK3D_CUDA ;;
    *) die "PARK3D_CUDA=$PARK3D_CUDA: expected auto, off, on, 11.8 (Debian's CUDA toolkit) or 13 (CUDA 13 from PyPI)" ;;
  esac
  case " off $CUDA_ROUTES " in
    *" $CUDA_ROUTE "*) ;;
    *) die "PARK3D_CUDA=$CUDA_ROUTE: route 11.8 is Debian 12's own CUDA toolkit, which this system ($OS_ID $OS_CODENAME) does not ship; its routes: $CUDA_ROUTES (PARK3D_CUDA=13 or on)" ;;
  esac
  if [ "$CUDA_ROUTE" != off ]; then
    # shellcheck source=../third_party/caffe/cuda-11.8.lock
    source "$ROOT/third_party/caffe/cuda-$CUDA_ROUTE.lock"
    case " $CUDA_ROUTES " in
      *" 11.8 "*) ;;
      *) CUDA_TOO_OLD_HINT="update the driver (route 13 is this system's only CUDA route), or PARK3D_CUDA=off for the CPU build"
         CUDA_OLD_GPU_HINT="route 13 is this system's only CUDA route: PARK3D_CUDA=off for the CPU build" ;;
    esac
    APT_PACKAGES="$APT_PACKAGES $CUDA_DEBIAN_PACKAGES"
  fi
  case "${PARK3D_CUDNN:-auto}" in
    auto)
      CUDNN=off
      if [ "$CUDA_ROUTE" != off ] && [ "$GPU_SEEN" = 1 ]; then
        local arch outside=""
        for arch in $GPU_ARCHS; do
          [ "$arch" -ge "$CUDNN_ARCH_MIN" ] && [ "$arch" -le "$CUDNN_ARCH_MAX" ] || outside="${outside:+$outside, }$(capability "$arch")"
        done
        if [ -n "$outside" ]; then
          say "cuDNN: none with CUDA route $CUDA_ROUTE: its cuDNN 9 runs on compute capability $(capability "$CUDNN_ARCH_MIN") to $(capability "$CUDNN_ARCH_MAX"), not on the GPU seen ($outside; PARK3D_CUDNN=9 adds it all the same)"
        else
          CUDNN=9
          say "cuDNN 9 with CUDA route $CUDA_ROUTE: a GPU is seen (the default; PARK3D_CUDNN=off builds without it)"
        fi
      fi ;;
    off|OFF|0) CUDNN=off ;;
    9) CUDNN=9; [ "$CUDA_ROUTE" != off ] || die "PARK3D_CUDNN=9 needs a CUDA route: add PARK3D_CUDA=11.8 (or 13, or on)" ;;
    *) die "PARK3D_CUDNN=$PARK3D_CUDNN: expected auto, off or 9 (cuDNN 9 from PyPI, with a CUDA route)" ;;
  esac
}

# The Caffe build's final options and its cache key, derived once from read_options and the venv's Python.
caffe_options() {
  CPU_ONLY=ON
  CUDA_KEY=""
  CMAKE_OPTIONS=$CAFFE_CMAKE_OPTIONS
  # The CPU build for this machine's CPU; a CUDA build's host code for any x86-64 of the last decade (AVX2):
  # a GPU does its work, and it travels (tools/device_bundle.sh, a cluster's compute nodes).
  MARCH=${MARCH:-native}
  if [ "$CUDA_ROUTE" != off ]; then
    CPU_ONLY=OFF
    [ -n "${PARK3D_MARCH:-}" ] || MARCH=x86-64-v3
    if [ -n "$CUDA_WHEELS" ]; then
      # The PyPI route: the pinned wheels unpacked once into one folder of the cache (step cuda-toolkit).
      CUDA_WHEELS_HOME=$CACHE_ROOT/cuda-$CUDA_VERSION-$(echo "$CUDA_WHEELS" | sha256sum | cut -c1-12)
      CUDA_TOOLKIT_ROOT=$CUDA_WHEELS_HOME/nvidia/cu${CUDA_VERSION%%.*}
    fi
    # An explicit toolkit root: else FindCUDA may pair an nvcc found on PATH with another toolkit's libraries.
    CMAKE_OPTIONS="$CMAKE_OPTIONS -DCUDA_TOOLKIT_ROOT_DIR=$CUDA_TOOLKIT_ROOT -DCUDA_HOST_COMPILER=$CUDA_HOST_COMPILER -DCUDA_ARCH_NAME=Manual"
    CUDA_KEY="cuda=$CUDA_VERSION $CUDA_DEBIAN_PACKAGES $CUDA_WHEELS arch=$CUDA_ARCH_BIN ptx=$CUDA_ARCH_PTX nccl=$NCCL_REQUIREMENT"
    # the GPU-only patches of patches-cuda/ join the key of CUDA builds alone (apply_patches)
    CUDA_KEY="$CUDA_KEY $(cat "$ROOT"/third_party/caffe/patches-cuda/*.patch | sha256sum | cut -c1-16)"
  fi
  CUDNN_HOME=""
  if [ "$CUDNN" = 9 ]; then
    # the wheel unpacked into the cache (step cudnn); the patches of patches-cudnn/ join the key (apply_patches)
    CUDNN_HOME=$CACHE_ROOT/cudnn-${CUDNN_WHEEL%%-py3*}
    CMAKE_OPTIONS="${CMAKE_OPTIONS/-DUSE_CUDNN=OFF/-DUSE_CUDNN=ON} -DCUDNN_INCLUDE=$CUDNN_HOME/nvidia/cudnn/include -DCUDNN_LIBRARY=$CUDNN_HOME/nvidia/cudnn/lib/libcudnn.so"
    CUDA_KEY="$CUDA_KEY cudnn=$CUDNN_REQUIREMENT $(cat "$ROOT"/third_party/caffe/patches-cudnn/*.patch | sha256sum | cut -c1-16)"
  fi
  PY_ABI=$("$VPY" -c 'import sys, sysconfig, numpy; print(sys.version.split()[0], sysconfig.get_config_var("LIBDIR"), numpy.__version__)')
  # Compiled for this machine's CPU (-march=native by default; PARK3D_MARCH=x86-64-v3, say, for a build that
  # other machines can share): the CPU's flags are part of the key, so another CPU gets its own build.
  CPU_FLAGS=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || true)
  CXX_FLAGS="$CAFFE_CXX_FLAGS -march=$MARCH"
  # the PyPI route's own thrust/cub/libcu++ for the host compiler (cuda-13.lock; the header guard checks it)
  [ "$CPU_ONLY" = ON ] || [ -z "${CUDA_HOST_INCLUDE:-}" ] || CXX_FLAGS="$CXX_FLAGS -isystem$CUDA_TOOLKIT_ROOT/$CUDA_HOST_INCLUDE"
  # Caffe links Debian's OpenMP build of OpenBLAS: its GEMMs and the OpenMP loops of patch 0003 then share one
  # thread pool (with the pthread build, each pool's idle threads spin on the cores the other one needs).
  OPENBLAS_OPENMP=/usr/lib/$(gcc -print-multiarch)/openblas-openmp/libopenblas.so.0
  CMAKE_OPTIONS="$CMAKE_OPTIONS -DOpenBLAS_LIB=$OPENBLAS_OPENMP"
  CAFFE_KEY=$( { echo "$CAFFE_ORIG_SHA256 $CAFFE_DEBIAN_SHA256"; cat "$ROOT"/third_party/caffe/patches/*.patch;
                 echo "$CMAKE_OPTIONS CPU_ONLY=$CPU_ONLY tests=$CAFFE_TEST_SUBSET $PY_ABI";
                 echo "$CXX_FLAGS $CAFFE_LINKER_FLAGS $CPU_FLAGS";
                 [ -z "$CUDA_KEY" ] || echo "$CUDA_KEY"; } | sha256sum | cut -c1-16)
  CAFFE_HOME=$CACHE_ROOT/caffe-$CAFFE_KEY
  NCCL_HOME=""
  [ "$CPU_ONLY" = ON ] || NCCL_HOME=$CACHE_ROOT/nccl-${NCCL_WHEEL%%-py3*}
}

# ---- step: the GPUs seen: a driver new enough for the CUDA route, machine code for their architectures -----
# sm_XY machine code runs on sm_XZ, Z >= Y (same major); a newer major runs the PTX, compiled by the driver.
sass_covers() {  # ARCH LIST...
  local arch=$1 b; shift
  for b in "$@"; do [ $((b / 10)) -eq $((arch / 10)) ] && [ "$b" -le "$arch" ] && return 0; done
  return 1
}

step_gpus() {
  CUDA_ARCH_BIN=${PARK3D_CUDA_ARCH:-${CUDA_ARCH_BIN_DEFAULT:-}}
  CUDA_ARCH_PTX=${PARK3D_CUDA_PTX:-${CUDA_ARCH_PTX_DEFAULT:-}}
  [ "$CUDA_ROUTE" != off ] && [ "$GPU_SEEN" = 1 ] || return 0
  if [ -n "$GPU_DRIVER" ] && ! driver_at_least "$CUDA_MIN_DRIVER"; then
    die "step 'cuda': the NVIDIA driver $GPU_DRIVER is older than CUDA $CUDA_VERSION needs ($CUDA_MIN_DRIVER or newer); $CUDA_TOO_OLD_HINT"
  fi
  [ -z "${PARK3D_CUDA_ARCH:-}" ] || return 0
  local arch cap
  for arch in $GPU_ARCHS; do
    cap=$(capability "$arch")
    if sass_covers "$arch" $CUDA_ARCH_BIN; then
      continue
    elif [[ " $CUDA_ARCH_SUPPORTED " == *" $arch "* ]]; then
      CUDA_ARCH_BIN=$(printf '%s\n' $CUDA_ARCH_BIN "$arch" | sort -n | paste -sd' ')
      say "cuda: machine code for sm_$arch too, the GPU seen (compute capability $cap; PARK3D_CUDA_ARCH overrides)"
    elif [ "$arch" -gt "${CUDA_ARCH_SUPPORTED##* }" ]; then
      say "cuda: the GPU seen (compute capability $cap) is newer than CUDA $CUDA_VERSION compiles for: the driver compiles the compute_$CUDA_ARCH_PTX PTX for it when a program first starts (once, then cached by the driver)$CUDA_NEW_GPU_HINT"
    else
      die "step 'cuda': the GPU seen (compute capability $cap) is older than CUDA $CUDA_VERSION compiles for (sm_${CUDA_ARCH_SUPPORTED%% *} and newer); $CUDA_OLD_GPU_HINT"
    fi
  done
}

# ---- step: apt -------------------------------------------------------------------------------------
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -n "${CUDA_DEBIAN_PACKAGES:-}" ] && ! grep -rqs "non-free" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Debian's CUDA toolkit is in the non-free component of the same archive
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: non-free contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/park3dpose-nonfree.sources
  fi
  if [ "$OS_ID" = ubuntu ] && ! grep -rqsE '^[^#]*\<universe\>' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # glog, gflags, LMDB and OpenBLAS's OpenMP build are in Ubuntu's universe component, which every Ubuntu image
    # enables but a minimal root may not: added from the archive the system already uses
    local uri
    uri=$(sed -n -E 's|^deb +(\[[^]]*\] +)?(https?://[^ ]+) .*|\2|p; s|^URIs: *(https?://[^ ]+).*|\1|p' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    echo "[setup] apt: adding Ubuntu's universe component from ${uri:=http://archive.ubuntu.com/ubuntu}"
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates %s-security\nComponents: universe\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n' \
      "$uri" "$OS_CODENAME" "$OS_CODENAME" "$OS_CODENAME" > /etc/apt/sources.list.d/park3dpose-universe.sources
  fi
  apt-get update && apt-get install -y --no-install-recommends "$@"
}

missing_apt_packages() {  # the packages of APT_PACKAGES not installed (or not at their pinned version)
  local p name want status
  for p in $APT_PACKAGES; do
    name=${p%%=*}; want=${p#*=}
    status=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
    case "$status" in
      "install ok installed"*) [ "$name" = "$p" ] || [ "${status##* }" = "$want" ] || echo "$p" ;;
      *) echo "$p" ;;
    esac
  done
}

step_apt() {
  local missing=()
  mapfile -t missing < <(missing_apt_packages)
  if [ ${#missing[@]} -eq 0 ]; then
    say "apt: all packages present (skipped)"
    return
  fi
  [ "$(id -u)" = 0 ] || die "step 'apt': missing Debian packages, run as root or install them: ${missing[*]}"
  run_step apt "$LOG_DIR/apt.log" apt_install "${missing[@]}"
}

# ---- step: Python and venv -------------------------------------------------------------------------
make_venv() {
  # a venv of another interpreter (another minor version, or a python3 found first on PATH) is made anew
  if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))' 2>/dev/null)" != "$PY_BASE" ]; then
    "$PYTHON" -m venv --clear "$VENV"
  fi
  # `&&` throughout: run_step calls this in an `if`, where `set -e` does not stop a function at a failing line
  { [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"; } &&
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$ROOT/requirements.txt" &&
  echo "$REQ_HASH" > "$VENV/.requirements-hash"
}

# Boost.Python is built per interpreter: Debian names it libboost_python3<minor>.so (e.g. libboost_python311.so).
boost_python_for() { ls /usr/lib/*/libboost_python"${1/./}".so /usr/lib/libboost_python"${1/./}".so 2>/dev/null | head -n1; }

step_venv() {
  command -v "$PYTHON" >/dev/null || die "step 'venv': $PYTHON not found; install the distribution's python3-dev and python3-venv, or set PYTHON=/path/to/python3"
  local py_ver
  py_ver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  case "$py_ver" in
    3.10|3.11|3.12|3.13) ;;
    *) die "step 'venv': $PYTHON is Python $py_ver; the project supports 3.10 to 3.13: set PYTHON= to one of those (the distribution's own python3 where it is one)" ;;
  esac
  [ -n "$(boost_python_for "$py_ver")" ] || die "step 'venv': no Boost.Python for Python $py_ver on this system (libboost_python${py_ver/./}.so), which pycaffe needs: use the python3 that the system's libboost-python-dev was built for (PYTHON=/usr/bin/python3), or install Boost.Python for $py_ver"
  PY_BASE=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')
  # setup.py too: its package list is what the editable install maps
  REQ_HASH=$( { cat "$ROOT/requirements.txt" "$ROOT/setup.py"; echo "$PY_BASE"; } | sha256sum | cut -c1-16)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.requirements-hash" 2>/dev/null)" = "$REQ_HASH" ] &&
     "$VENV/bin/python" -c 'import numpy' 2>/dev/null; then
    say "venv: up to date (skipped)"
  else
    run_step venv "$LOG_DIR/venv.log" make_venv
  fi
  VPY=$VENV/bin/python
}

install_torch() {
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$ROOT/requirements-torch.txt" &&
  echo "$TORCH_HASH" > "$VENV/.torch-hash"
}

step_torch() {
  [ "${PARK3D_TORCH:-0}" = 1 ] || return 0
  TORCH_HASH=$(sha256sum < "$ROOT/requirements-torch.txt" | cut -c1-16)
  if [ "$(cat "$VENV/.torch-hash" 2>/dev/null)" = "$TORCH_HASH" ] && "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    say "torch: up to date (skipped)"
  else
    run_step torch "$LOG_DIR/torch.log" install_torch
  fi
}

# ---- step: Caffe (cached) --------------------------------------------------------------------------
# A CUDA build loads NCCL and (route 13) the toolkit from the cache: a build whose folders are gone is rebuilt.
cached_parts_present() {
  [ -z "$NCCL_HOME" ] || [ -f "$NCCL_HOME/.complete" ] || return 1
  [ -z "$CUDNN_HOME" ] || [ -f "$CUDNN_HOME/.complete" ] || return 1
  [ -z "${CUDA_WHEELS_HOME:-}" ] || [ -f "$CUDA_WHEELS_HOME/.complete" ]
}

fetch_sources() {
  local f sha url ok pair m
  for pair in "$CAFFE_ORIG:$CAFFE_ORIG_SHA256" "$CAFFE_DEBIAN:$CAFFE_DEBIAN_SHA256"; do
    f=${pair%%:*}; sha=${pair##*:}
    if [ -f "$DL/$f" ] && echo "$sha  $DL/$f" | sha256sum -c --status; then continue; fi
    ok=0
    for m in $CAFFE_MIRRORS; do
      url="$m/$f"
      echo "fetching $url"
      if curl -fsSL --retry 2 -m 600 -o "$DL/$f.part" "$url"; then ok=1; break; fi
    done
    [ $ok = 1 ] || { echo "no mirror served $f"; return 1; }
    mv "$DL/$f.part" "$DL/$f"
  done
}

checksum_sources() {
  echo "$CAFFE_ORIG_SHA256  $DL/$CAFFE_ORIG" | sha256sum -c &&
  echo "$CAFFE_DEBIAN_SHA256  $DL/$CAFFE_DEBIAN" | sha256sum -c ||
  { echo "checksum mismatch: delete $DL and retry; if it persists the mirror serves different bytes"; return 1; }
}

apply_patches() {
  local p
  mkdir -p "$SRC" && tar xzf "$DL/$CAFFE_ORIG" -C "$SRC" && tar xJf "$DL/$CAFFE_DEBIAN" -C "$WORK" || return 1
  while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    echo "debian: $p"; patch -d "$SRC" -p1 --forward < "$WORK/debian/patches/$p" || return 1
  done < "$WORK/debian/patches/series"
  for p in "$ROOT"/third_party/caffe/patches/*.patch; do
    echo "project: $p"; patch -d "$SRC" -p1 --forward < "$p" || return 1
  done
  [ "$CPU_ONLY" = ON ] && return 0
  for p in "$ROOT"/third_party/caffe/patches-cuda/*.patch; do
    echo "project (CUDA): $p"; patch -d "$SRC" -p1 --forward < "$p" || return 1
  done
  [ "$CUDNN" = off ] && return 0
  for p in "$ROOT"/third_party/caffe/patches-cudnn/*.patch; do
    echo "project (cuDNN): $p"; patch -d "$SRC" -p1 --forward < "$p" || return 1
  done
}

# unpack_wheels DEST REQUIREMENTS FIXUP: pinned wheels (pip checks every hash) unpacked once into DEST through
# DEST.partial.$$; FIXUP DIR runs on the unpacked folder before it is renamed into place.
unpack_wheels() {
  local dest=$1 requirements=$2 fixup=$3 tmp=$1.partial.$$
  [ -f "$dest/.complete" ] && return 0
  rm -rf "$tmp" && mkdir -p "$tmp" && echo "$requirements" > "$tmp/requirements.txt" &&
  "$VPY" -m pip download --disable-pip-version-check --no-cache-dir -q --no-deps --require-hashes -r "$tmp/requirements.txt" -d "$tmp/wheels" &&
  "$VPY" -c "import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]" "$tmp" "$tmp"/wheels/*.whl &&
  rm -rf "$tmp/wheels" && "$fixup" "$tmp" && rm -rf "$dest" && mv "$tmp" "$dest" && touch "$dest/.complete"
}

# NVIDIA's wheels carry only versioned libraries (libnccl.so.2, libcudart.so.13); FindCUDA and the linker
# want the plain names.
plain_so_names() { local lib; for lib in "$@"; do ln -sf "$(basename "$lib")" "${lib%.so.*}.so"; done; }
nccl_fixup() { plain_so_names "$1"/nvidia/nccl/lib/lib*.so.*; }
cudnn_fixup() { plain_so_names "$1"/nvidia/cudnn/lib/lib*.so.* && ls "$1"/nvidia/cudnn/include/cudnn_version.h; }
toolkit_fixup() {  # zipfile keeps no permissions: the compiler's programs made executable, then checked
  chmod +x "$1"/nvidia/cu*/bin/* "$1"/nvidia/cu*/nvvm/bin/* && plain_so_names "$1"/nvidia/cu*/lib/lib*.so.* &&
  "$1"/nvidia/cu*/bin/nvcc --version
}

configure_caffe() {
  local cuda=()
  [ "$CPU_ONLY" = ON ] || cuda=(-DCUDA_ARCH_BIN="$CUDA_ARCH_BIN" -DCUDA_ARCH_PTX="$CUDA_ARCH_PTX" -DUSE_NCCL=ON
                                -DNCCL_INCLUDE_DIR="$NCCL_HOME/nvidia/nccl/include"
                                -DNCCL_LIBRARIES="$NCCL_HOME/nvidia/nccl/lib/libnccl.so")
  # shellcheck disable=SC2086
  cmake -S "$SRC" -B "$WORK/build" $CMAKE_OPTIONS -DCPU_ONLY=$CPU_ONLY "${cuda[@]}" "${LAUNCHER[@]}" \
    -DBUILD_only_tests="$CAFFE_TEST_SUBSET" \
    -DPYTHON_EXECUTABLE="$VPY" -DPYTHON_INCLUDE_DIR="$PY_INC" -DPYTHON_LIBRARY="$PY_LIB" \
    -DCMAKE_INSTALL_PREFIX="$CAFFE_HOME" -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=ON \
    -DCMAKE_CXX_FLAGS="$CXX_FLAGS" -DCMAKE_SHARED_LINKER_FLAGS="$CAFFE_LINKER_FLAGS" \
    -DCMAKE_EXE_LINKER_FLAGS="$CAFFE_LINKER_FLAGS"
}

# Installed with DESTDIR into $STAGE, then renamed to $CAFFE_HOME: the RPATHs Caffe's CMake writes (the install
# prefix) are right, and a failed build leaves no half-installed $CAFFE_HOME.
build_caffe() { cmake --build "$WORK/build" -j "$JOBS" && DESTDIR=$STAGE cmake --build "$WORK/build" --target install; }

install_tests() {
  local d=$STAGE$CAFFE_HOME
  install -m 755 "$WORK/build/test/test.testbin" "$d/bin/caffe_layer_tests" &&
  echo "$CAFFE_TEST_SUBSET" > "$d/share/caffe_layer_tests.txt" &&
  # The solver gtests read their data relative to the working directory: run them from caffe_gtest_root.
  mkdir -p "$d/share/caffe_gtest_root/src/caffe/test/test_data" &&
  cp "$SRC"/src/caffe/test/test_data/solver_data* "$d/share/caffe_gtest_root/src/caffe/test/test_data/" &&
  cp -r "$SRC/python/caffe/test" "$d/share/caffe_python_tests" &&  # Caffe's own pycaffe tests
  echo "$CAFFE_VERSION" > "$d/share/caffe_version.txt" &&
  # what tools/build_pycaffe.sh needs to compile the caffe tool and pycaffe for another Python (patch 0010)
  mkdir -p "$d/share/pycaffe_src" &&
  cp "$SRC/tools/caffe.cpp" "$SRC/python/caffe/_caffe.cpp" "$d/share/pycaffe_src/" &&
  for target in tools/CMakeFiles/caffe.bin.dir python/CMakeFiles/pycaffe.dir; do
    sed -n 's/^CXX_DEFINES = //p; s/^CXX_FLAGS = //p' "$WORK/build/$target/flags.make" > "$d/share/pycaffe_src/$(basename "$target" .dir).flags" || return 1
  done
}

# The PyPI route's build must read CUDA headers from its own toolkit, cuDNN and NCCL alone (layers/caffe_build.py);
# the result is kept with the build (share/cuda_header_guard.txt) for the CUDA smoke test.
header_guard() {
  (cd "$ROOT" && "$VPY" -m layers.caffe_build header-guard "$WORK/build" "$STAGE$CAFFE_HOME/share/cuda_header_guard.txt" \
     "$CUDA_WHEELS_HOME" "$WORK" ${NCCL_HOME:+"$NCCL_HOME"} ${CUDNN_HOME:+"$CUDNN_HOME"})
}

# protoc before 3.20 (Ubuntu 22.04's 3.12) writes caffe_pb2 in a form the venv's protobuf refuses: rewritten in
# the form a newer protoc writes, from the same serialized descriptor (layers/caffe_build.py); else untouched.
modernize_pb2() {
  local pb2
  pb2=$(ls "$STAGE$CAFFE_HOME"/lib/python3*/dist-packages/caffe/proto/caffe_pb2.py) &&
  (cd "$ROOT" && "$VPY" -m layers.caffe_build modernize-pb2 "$pb2" "$(protoc --version | cut -d' ' -f2)")
}

# Marked complete only once it runs from its final place (RPATHs, pycaffe); else the next set-up rebuilds.
verify_caffe() {
  "$CAFFE_HOME/bin/caffe" --version &&
  PYTHONPATH=$(ls -d "$CAFFE_HOME"/lib/python3*/dist-packages) "$VPY" -c "import caffe; print(caffe.__file__)" &&
  touch "$CAFFE_HOME/.complete"
}

step_caffe() {
  if [ -f "$CAFFE_HOME/.complete" ] && cached_parts_present; then
    say "caffe: cached at $CAFFE_HOME (skipped)"
    return
  fi
  say "caffe: building into $CAFFE_HOME (CPU_ONLY=$CPU_ONLY${CUDA_KEY:+, CUDA $CUDA_VERSION for sm $CUDA_ARCH_BIN}${CUDNN_HOME:+, cuDNN $CUDNN}, $JOBS jobs); a cold build takes about 5 min on 2 cores (CUDA: 10-15)"
  DL=$CACHE_ROOT/downloads
  WORK=$(mktemp -d "$CACHE_ROOT/build-XXXXXX")
  STAGE=$CACHE_ROOT/.caffe-$CAFFE_KEY.partial.$$
  SRC=$WORK/src
  trap 'rm -rf "$WORK" "$STAGE" "$NCCL_HOME.partial.$$" "${CUDA_WHEELS_HOME:-$WORK}.partial.$$" "${CUDNN_HOME:-$WORK}.partial.$$"' EXIT
  mkdir -p "$DL"
  run_step download "$LOG_DIR/caffe-download.log" fetch_sources
  run_step checksum "$LOG_DIR/caffe-checksum.log" checksum_sources
  run_step patch "$LOG_DIR/caffe-patch.log" apply_patches
  PY_INC=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  PY_LIB=$("$VPY" -c 'import sysconfig, os; d = sysconfig.get_config_var("LIBDIR"); print(os.path.join(d, sysconfig.get_config_var("LDLIBRARY")))')
  [ -f "$PY_LIB" ] || PY_LIB=$("$VPY" -c 'import sysconfig, os; print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("MULTIARCH") or "", sysconfig.get_config_var("LDLIBRARY")))')
  [ -f "$PY_LIB" ] || die "step 'configure': no shared libpython at $PY_LIB (the embedded Python layer needs one); use a Python built with --enable-shared, e.g. Debian's python3.11"
  LAUNCHER=()
  if command -v ccache >/dev/null; then
    LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR=$WORK  # the build directory is a fresh temp dir each time: hash relative paths
  fi
  [ "$CPU_ONLY" = ON ] || run_step nccl "$LOG_DIR/nccl.log" unpack_wheels "$NCCL_HOME" "$NCCL_REQUIREMENT" nccl_fixup
  [ -z "$CUDNN_HOME" ] || run_step cudnn "$LOG_DIR/cudnn.log" unpack_wheels "$CUDNN_HOME" "$CUDNN_REQUIREMENT" cudnn_fixup
  # the PyPI route: the pinned toolkit wheels unpacked into one toolkit folder
  [ -z "${CUDA_WHEELS_HOME:-}" ] || run_step cuda-toolkit "$LOG_DIR/cuda-toolkit.log" unpack_wheels "$CUDA_WHEELS_HOME" "$CUDA_WHEELS" toolkit_fixup
  run_step configure "$LOG_DIR/caffe-configure.log" configure_caffe
  run_step build "$LOG_DIR/caffe-build.log" build_caffe
  run_step build-tests "$LOG_DIR/caffe-build-tests.log" cmake --build "$WORK/build" -j "$JOBS" --target test.testbin
  [ -z "${CUDA_WHEELS_HOME:-}" ] || run_step header-guard "$LOG_DIR/caffe-header-guard.log" header_guard
  run_step install "$LOG_DIR/caffe-install.log" install_tests
  run_step caffe-pb2 "$LOG_DIR/caffe-pb2.log" modernize_pb2
  rm -rf "$CAFFE_HOME" && mv "$STAGE$CAFFE_HOME" "$CAFFE_HOME" && rm -rf "$STAGE"
  run_step verify "$LOG_DIR/caffe-verify.log" verify_caffe
  rm -rf "$WORK"; trap - EXIT
}

# ---- step: OpenBLAS kernels ------------------------------------------------------------------------
# Where OpenBLAS's own CPU detection falls back to generic kernels on this CPU, force the best core the
# CPU's flags allow (layers/openblas.py), once Caffe's own gtests pass under it; a user's explicit
# OPENBLAS_CORETYPE still wins. The choice goes into the caffe wrapper and a start-up hook of the venv.
blas_core() {
  local core verified
  core=$(cd "$ROOT" && "$VPY" -m layers.openblas choose "$CAFFE_HOME/bin/caffe")
  if [ -n "$core" ]; then
    verified=$CACHE_ROOT/openblas-verified-$CAFFE_KEY-$core
    if [ ! -f "$verified" ]; then
      if (cd "$ROOT" && "$VPY" -m layers.openblas verify "$CAFFE_HOME" "$core") > "$LOG_DIR/openblas-$core-gtests.log" 2>&1; then
        touch "$verified"
      else
        echo "Caffe's gtests fail with OPENBLAS_CORETYPE=$core (log: $LOG_DIR/openblas-$core-gtests.log); keeping OpenBLAS's own choice"
        core=""
      fi
    fi
  fi
  echo "$core" > "$VENV/.openblas-coretype"
  echo "OpenBLAS core forced: ${core:-none (its own detection is the best this CPU allows)}"
}

step_openblas() {
  run_step openblas "$LOG_DIR/openblas.log" blas_core
  BLAS_CORE=$(cat "$VENV/.openblas-coretype")
  [ -z "$BLAS_CORE" ] || say "openblas: OpenBLAS's CPU detection falls back on this CPU; forcing OPENBLAS_CORETYPE=$BLAS_CORE"
}

# ---- step: link Caffe into the venv; install the project -------------------------------------------
link() {
  local site caffe_py
  site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  caffe_py=$(ls -d "$CAFFE_HOME"/lib/python3*/dist-packages "$CAFFE_HOME"/python 2>/dev/null | head -n1)
  [ -f "$caffe_py/caffe/__init__.py" ] || { echo "no pycaffe under $CAFFE_HOME"; return 1; }
  echo "$caffe_py" > "$site/caffe.pth"
  # Python start-up hook: OPENBLAS_CORETYPE must be set before NumPy or pycaffe load OpenBLAS.
  if [ -n "$BLAS_CORE" ]; then
    echo "import os; os.environ.setdefault('OPENBLAS_CORETYPE', '$BLAS_CORE')  # tools/setup.sh, layers/openblas.py" > "$site/park3dpose_openblas.pth"
  else
    rm -f "$site/park3dpose_openblas.pth"
  fi
  # Idle OpenMP threads spin briefly, then sleep, unless the user chose (docs/design.md): in every Python of the
  # venv, whatever it imports first, since libgomp reads its variables once, when pycaffe (or torch) loads it.
  echo "import os; 'OMP_WAIT_POLICY' in os.environ or os.environ.setdefault('GOMP_SPINCOUNT', '1000')  # tools/setup.sh, layers/__init__.py" > "$site/park3dpose_openmp.pth"
  # The caffe tool embeds Python for Python layers. With no program name set, Python 3.11 finds its
  # prefix by looking up `python3` on PATH, so putting the venv first makes it the venv's interpreter.
  local blas_line="# OpenBLAS's own CPU detection is used (layers/openblas.py)"
  [ -z "$BLAS_CORE" ] || blas_line=": \"\${OPENBLAS_CORETYPE:=$BLAS_CORE}\"; export OPENBLAS_CORETYPE  # layers/openblas.py"
  cat > "$VENV/bin/caffe" <<EOF
#!/bin/sh
# Generated by tools/setup.sh: Caffe from $CAFFE_HOME with this venv's Python for Python layers.
$blas_line
[ -n "\${OMP_WAIT_POLICY+set}" ] || { : "\${GOMP_SPINCOUNT=1000}"; export GOMP_SPINCOUNT; }  # idle OpenMP threads sleep soon (layers/__init__.py)
# -gpu N checked first: one line and exit code 2 for a GPU this Caffe cannot use (layers/device.py)
gpu= prev=
for a in "\$@"; do
  case \$prev in -gpu|--gpu) gpu=\$a ;; esac
  case \$a in -gpu=*|--gpu=*) gpu=\${a#*=} ;; esac
  prev=\$a
done
if [ -n "\$gpu" ]; then "$VENV/bin/python" -m layers.device "\$gpu"; [ \$? != 2 ] || exit 2; fi
PATH="$VENV/bin:\$PATH" exec "$CAFFE_HOME/bin/caffe" "\$@"
EOF
  chmod +x "$VENV/bin/caffe" && echo "$CAFFE_HOME" > "$VENV/.caffe-home" || return 1
  if [ "$(cat "$VENV/.project-installed" 2>/dev/null)" != "$(sha256sum "$ROOT/setup.py" | cut -c1-16)" ]; then
    "$VPY" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$ROOT" &&
    sha256sum "$ROOT/setup.py" | cut -c1-16 > "$VENV/.project-installed" || return 1
  fi
  "$VPY" -c "import caffe, layers, data_prep"
}

step_link() { run_step link "$LOG_DIR/link.log" link; }

# --plan: the decisions above and what the apt step would install, then stop before changing anything
plan() {
  local cuda="off (the CPU build)" missing
  [ "$CUDA_ROUTE" = off ] || cuda="route $CUDA_ROUTE, cuDNN $CUDNN, machine code for sm_${CUDA_ARCH_BIN// /, sm_}, PTX compute_$CUDA_ARCH_PTX"
  missing=$(missing_apt_packages | paste -sd' ')
  echo "[setup] plan: Python $PYTHON; CUDA: $cuda; apt: ${missing:-nothing to install}; venv $VENV, cache $CACHE_ROOT (--plan: nothing changed)"
}

main() {
  local t_start=$SECONDS
  case "${1:-}" in --plan|'') ;; *) die "unknown argument '$1': tools/setup.sh takes no argument, or --plan" ;; esac
  read_options
  step_gpus
  if [ "${1:-}" = --plan ]; then plan; return; fi
  mkdir -p "$LOG_DIR"
  step_apt
  step_venv
  step_torch
  caffe_options
  step_caffe
  step_openblas
  step_link
  say "ready in $((SECONDS - t_start)) s: source ${VENV#"$ROOT"/}/bin/activate (caffe at $CAFFE_HOME)"
}

main "$@"
