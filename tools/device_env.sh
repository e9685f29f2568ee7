# Sourced by tools/device_check.sh and tools/device_e2e.sh (after ROOT, OUT, DEVICE_DIR and fail are set): unpacks
# the bundle tools/device_bundle.sh made into WORK (removed on exit) as B, finds CUDA 13's libraries and cuDNN 9
# (CUDA13_LIBS, else the NVIDIA Python packages beside python3's torch, else the set-up's cache), defines
# `libs BUILD` (that build's LD_LIBRARY_PATH) and BATCH (the batch of the bundle's timing nets), and checks that
# every library the builds load is found.
[ -f "$DEVICE_DIR/caffe-cuda13.tar.xz" ] || fail "no $DEVICE_DIR/caffe-cuda13.tar.xz: run bash tools/device_bundle.sh first (and carry .device)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
tar xJf "$DEVICE_DIR/caffe-cuda13.tar.xz" -C "$WORK" || fail "cannot unpack $DEVICE_DIR/caffe-cuda13.tar.xz"
B=$WORK/caffe-cuda13
[ -d "$B/builds/plain" ] && [ -d "$B/builds/cudnn9" ] || fail "$DEVICE_DIR/caffe-cuda13.tar.xz holds no builds/plain and builds/cudnn9 (an older bundle): run bash tools/device_bundle.sh again"
CACHE_ROOT=${PARK3D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/park3dpose}
CUDA_DIRS=${CUDA13_LIBS:-$(python3 - "$CACHE_ROOT" <<'PY'
import glob, os, site, sys
names = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libnccl.so.2", "libcudnn.so.9")
cache = [glob.glob(os.path.join(sys.argv[1], pattern)) for pattern in ("cuda-13*", "nccl-*cu13*", "cudnn-*cu13*")]
roots = [os.path.join(p, "nvidia") for p in site.getsitepackages() + sys.path] + sum(cache, [])
found = {}
for root in roots:
    for name in names:
        for path in glob.glob(os.path.join(root, "**", name), recursive=True):
            found.setdefault(name, os.path.dirname(path))
print(":".join(sorted(set(found.values()))))
PY
)}
BATCH=$(ls "$B/nets" | sed -n 's/^time_both_b\([0-9]*\)\.prototxt$/\1/p')
[ -n "$BATCH" ] || fail "$DEVICE_DIR/caffe-cuda13.tar.xz holds no nets/time_both_b<batch>.prototxt: run bash tools/device_bundle.sh again"
libs() { echo "$B/builds/$1/lib:$B/deps:$CUDA_DIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; }
for build in plain cudnn9; do
  missing=$(LD_LIBRARY_PATH=$(libs $build) ldd "$B/builds/$build/lib/libcaffe.so" "$B/builds/$build/bin/caffe" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
  [ -z "$missing" ] || fail "$build build: libraries not found: $missing(CUDA 13 and cuDNN folders used: ${CUDA_DIRS:-none}; set CUDA13_LIBS)"
done
