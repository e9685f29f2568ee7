#!/usr/bin/env bash
# Packs what a GPU machine without network needs to measure this Caffe on its card (tools/device_check.sh):
# the CUDA 13 build (route 13 of tools/setup.sh, built or reused from the cache), the Debian libraries it loads
# that an Ubuntu-like image lacks, Caffe's gtest binary and data, and the nets `caffe time` runs without Python
# (prototxt.generate --timing-nets, batch 128). CUDA's own libraries (cudart, cuBLAS, cuRAND, NCCL 13) are not
# packed: the machine's PyTorch wheels carry them. Output: .device/caffe-cuda13.tar.xz (about 23 MB; git ignores
# .device/), then e.g. the device tool: carry [".device"], command "bash tools/device_check.sh".
#   bash tools/device_bundle.sh [BATCH]        (PARK3D_DEVICE_DIR: another folder than .device)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_ROOT=${PARK3D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/park3dpose}
BATCH=${1:-128}
DEVICE_DIR=${PARK3D_DEVICE_DIR:-$ROOT/.device}
VENV=$CACHE_ROOT/venv-cuda-13
PARK3D_CUDA=13 PARK3D_VENV=$VENV PARK3D_QUIET=1 bash "$ROOT/tools/setup.sh"
HOME_13=$(cat "$VENV/.caffe-home")
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
B=$STAGE/caffe-cuda13
mkdir -p "$B/bin" "$B/lib" "$B/deps" "$B/nets" "$B/share"
cp -a "$HOME_13"/bin/caffe "$HOME_13"/bin/caffe_layer_tests "$B/bin/"
cp -a "$HOME_13"/lib/libcaffe.so* "$B/lib/"
cp -a "$HOME_13/share/caffe_gtest_root" "$HOME_13/share/caffe_version.txt" "$B/share/"
# Every library the binaries load, except glibc's, the compiler runtime (newer on the machine) and CUDA's.
ldd "$HOME_13/lib/libcaffe.so" "$HOME_13/bin/caffe" "$HOME_13/bin/caffe_layer_tests" | awk '/=> \// {print $3}' | sort -u |
  grep -v -E '/(libc|libm|libdl|libpthread|librt|libresolv|libgcc_s|libstdc\+\+)\.so|/cuda-[0-9.]+-[0-9a-f]+/|/nccl-' |
  while read -r lib; do cp -L "$lib" "$B/deps/"; done
"$ROOT/.venv/bin/python" -m prototxt.generate --timing-nets "$B/nets" --batch "$BATCH" >/dev/null
echo "route-13 Caffe from $HOME_13; nets at batch $BATCH" > "$B/share/bundle.txt"
mkdir -p "$DEVICE_DIR"
tar cJf "$DEVICE_DIR/caffe-cuda13.tar.xz.partial" -C "$STAGE" caffe-cuda13
mv "$DEVICE_DIR/caffe-cuda13.tar.xz.partial" "$DEVICE_DIR/caffe-cuda13.tar.xz"
echo "wrote $DEVICE_DIR/caffe-cuda13.tar.xz ($(du -h "$DEVICE_DIR/caffe-cuda13.tar.xz" | cut -f1); $(ls "$B/deps" | wc -l) libraries, $(ls "$B/nets" | wc -l) nets)"
