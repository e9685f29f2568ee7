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
"$ROOT/.venv/bin/python" -m prototxt.generate --timing-nets "$B/nets" --batch "$BATCH" >/dev/null
echo "nets at batch $BATCH" >> "$B/share/bundle.txt"
mkdir -p "$DEVICE_DIR"
tar cJf "$DEVICE_DIR/caffe-cuda13.tar.xz.partial" -C "$STAGE" caffe-cuda13
mv "$DEVICE_DIR/caffe-cuda13.tar.xz.partial" "$DEVICE_DIR/caffe-cuda13.tar.xz"
echo "wrote $DEVICE_DIR/caffe-cuda13.tar.xz ($(du -h "$DEVICE_DIR/caffe-cuda13.tar.xz" | cut -f1); builds $(ls "$B/builds" | paste -sd,); $(ls "$B/deps" | wc -l) libraries, $(ls "$B/nets" | wc -l) nets)"
