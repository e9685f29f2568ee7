#!/usr/bin/env bash
# Packs what a GPU machine without network needs to measure this Caffe on its card (tools/device_check.sh):
# route 13 of tools/setup.sh twice, without and with cuDNN 9 (PARK3D_CUDNN=9; each built or reused from the cache),
# the Debian libraries they load that an Ubuntu-like image lacks, Caffe's gtest binaries and data, and the nets
# `caffe time` runs without Python (prototxt.generate --timing-nets, batch 128). CUDA's own libraries (cudart,
# cuBLAS, cuRAND, NCCL 13) and cuDNN 9 (about 1 GB) are not packed: the machine's PyTorch wheels carry them.
# Output: .device/caffe-cuda13.tar.xz (about 25 MB; git ignores .device/), then e.g. the device tool:
# carry [".device"], command "bash tools/device_check.sh".
#   bash tools/device_bundle.sh [BATCH]        (PARK3D_DEVICE_DIR: another folder than .device)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_ROOT=${PARK3D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/park3dpose}
BATCH=${1:-128}
DEVICE_DIR=${PARK3D_DEVICE_DIR:-$ROOT/.device}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
B=$STAGE/caffe-cuda13
mkdir -p "$B/deps" "$B/nets" "$B/share"
# shellcheck source=../third_party/caffe/cuda-13.lock
CUDNN_VERSION=$(source "$ROOT/third_party/caffe/cuda-13.lock" && echo "$CUDNN_WHEEL" | cut -d- -f2)
# BUILD NAME, PARK3D_CUDNN: one build's binaries and library under builds/NAME
for build in "plain off" "cudnn9 9"; do
  read -r name cudnn <<< "$build"
  venv=$CACHE_ROOT/venv-cuda-13$([ "$cudnn" = off ] || echo "-cudnn$cudnn")
  PARK3D_CUDA=13 PARK3D_CUDNN=$cudnn PARK3D_VENV=$venv PARK3D_QUIET=1 bash "$ROOT/tools/setup.sh"
  home=$(cat "$venv/.caffe-home")
  mkdir -p "$B/builds/$name/bin" "$B/builds/$name/lib"
  cp -a "$home"/bin/caffe "$home"/bin/caffe_layer_tests "$B/builds/$name/bin/"
  cp -a "$home"/lib/libcaffe.so* "$B/builds/$name/lib/"
  cp -a "$home/share/caffe_version.txt" "$B/builds/$name/"
  [ -d "$B/share/caffe_gtest_root" ] || cp -a "$home/share/caffe_gtest_root" "$B/share/"
  echo "$name: route-13 Caffe from $home, $([ "$cudnn" = off ] && echo "no cuDNN" || echo "built against cuDNN $CUDNN_VERSION")" >> "$B/share/bundle.txt"
  # Every library the binaries load, except glibc's, the compiler runtime (newer on the machine), CUDA's and cuDNN's.
  ldd "$home/lib/libcaffe.so" "$home/bin/caffe" "$home/bin/caffe_layer_tests" | awk '/=> \// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|libresolv|libgcc_s|libstdc\+\+)\.so|/cuda-[0-9.]+-[0-9a-f]+/|/nccl-|/cudnn-' |
    while read -r lib; do cp -L "$lib" "$B/deps/"; done
done
# tools/device_e2e.sh: the pycaffe kit of the cuDNN build (tools/pycaffe_kit.sh: the caffe tool and pycaffe compiled
# there for the machine's Python) and the wheels of what that Python lacks, for 3.12 (the GPU machines' Python),
# 3.13 (Debian 13's) and this machine's (the --cpu rehearsal)
venv=$CACHE_ROOT/venv-cuda-13-cudnn9
PARK3D_VENV=$venv bash "$ROOT/tools/pycaffe_kit.sh" "$(cat "$venv/.caffe-home")" "$B/pycaffe" \
  "$CACHE_ROOT"/cuda-13*/nvidia/cu13/include/cccl "$CACHE_ROOT"/cuda-13*/nvidia/cu13/include \
  "$CACHE_ROOT"/cudnn-*cu13*/nvidia/cudnn/include "$CACHE_ROOT"/nccl-*cu13*/nvidia/nccl/include
mkdir -p "$B/wheels" "$CACHE_ROOT/downloads/device-wheels"
printf '%s\n' lmdb==1.6.2 cdflib==1.3.1 protobuf==6.31.1 > "$B/wheels/requirements.txt"  # requirements.txt's pins (3.13 line)
for version in 3.12 3.13 "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"; do
  "$venv/bin/python" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: --python-version "$version" \
    --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$CACHE_ROOT/downloads/device-wheels" -r "$B/wheels/requirements.txt"
done
for w in $(sed 's/==/-/' "$B/wheels/requirements.txt"); do cp "$CACHE_ROOT/downloads/device-wheels/$w"-*.whl "$B/wheels/"; done
echo "pycaffe kit: $(cat "$B/pycaffe/kit.txt"); wheels: $(ls "$B/wheels" | grep -c whl)" >> "$B/share/bundle.txt"
"$ROOT/.venv/bin/python" -m prototxt.generate --timing-nets "$B/nets" --batch "$BATCH" >/dev/null
echo "nets at batch $BATCH" >> "$B/share/bundle.txt"
mkdir -p "$DEVICE_DIR"
# written beside, then renamed: a run killed here or a second copy at once never leaves a half-written bundle
PARTIAL=$DEVICE_DIR/caffe-cuda13.tar.xz.partial.$$
trap 'rm -rf "$STAGE" "$PARTIAL"' EXIT
tar cJf "$PARTIAL" -C "$STAGE" caffe-cuda13
mv "$PARTIAL" "$DEVICE_DIR/caffe-cuda13.tar.xz"
echo "wrote $DEVICE_DIR/caffe-cuda13.tar.xz ($(du -h "$DEVICE_DIR/caffe-cuda13.tar.xz" | cut -f1); builds $(ls "$B/builds" | paste -sd,); $(ls "$B/deps" | wc -l) libraries, $(ls "$B/nets"/*.prototxt | wc -l) nets)"
