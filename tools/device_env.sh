# Sourced by tools/device_check.sh and tools/device_e2e.sh (after ROOT, OUT, DEVICE_DIR and fail are set): unpacks
# the bundle tools/device_bundle.sh made into WORK (removed on exit) as B, finds CUDA 13's libraries and cuDNN 9
# (CUDA13_LIBS, else the NVIDIA Python packages beside python3's torch, else the set-up's cache), defines
# `libs BUILD` (that build's LD_LIBRARY_PATH) and BATCH (the batch of the bundle's timing nets), and checks that
# every library the builds load is found.
# A bundle that is missing, damaged or too old is bad input: one line, exit 2 (fail MESSAGE [CODE], the caller's).
[ -f "$DEVICE_DIR/caffe-cuda13.tar.xz" ] || fail "no $DEVICE_DIR/caffe-cuda13.tar.xz: run bash tools/device_bundle.sh first (and carry .device)" 2
# WORK: this run's own folder; those of runs killed outright (SIGKILL: no trap ran, their process is gone) go first
for stale in "${TMPDIR:-/tmp}"/park3d-device.*; do
  pid=${stale##*/park3d-device.} pid=${pid%%.*}
  [ -d "$stale" ] && ! kill -0 "$pid" 2>/dev/null && rm -rf "$stale"
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/park3d-device.$$.XXXXXX") || fail "cannot make a folder in ${TMPDIR:-/tmp}: set TMPDIR" 2
# stop_children, for the exit traps: TERM to every process this script started and their descendants (a step's
# compiler, a caffe under timeout), so that a TERM to the script alone leaves nothing running into a removed WORK
stop_tree() { local p; for p in "$@"; do stop_tree $(pgrep -P "$p"); kill -TERM "$p" 2>/dev/null; done; }
stop_children() { stop_tree $(pgrep -P $$ | grep -vxF "$BASHPID"); }
trap 'stop_children; rm -rf "$WORK"' EXIT
# Every process of the kit keeps its temporary files in WORK, removed with it: the gtests' caffe_test.* folders
# (Caffe never removes them), glog's files of each caffe process (unless the caller chose GLOG_log_dir; the caffe
# tool logs to stderr too, which the kit keeps), torch's torchinductor_$USER (the peer's SGD step makes it)
mkdir -p "$WORK/tmp" && export TMPDIR=$WORK/tmp
if ! err=$(tar xJf "$DEVICE_DIR/caffe-cuda13.tar.xz" -C "$WORK" 2>&1 >/dev/null); then
  # an archive whose xz stream is whole could not be written out: a full disk (tar's words for it vary)
  if xz -t "$DEVICE_DIR/caffe-cuda13.tar.xz" 2>/dev/null; then
    fail "no space left in $WORK to unpack $DEVICE_DIR/caffe-cuda13.tar.xz (about 0.2 GB; ${err%%$'\n'*}): free some, or set TMPDIR to a folder on another disk" 2
  fi
  fail "cannot unpack $DEVICE_DIR/caffe-cuda13.tar.xz, damaged or cut short (${err%%$'\n'*}): make it again with bash tools/device_bundle.sh and carry .device" 2
fi
B=$WORK/caffe-cuda13
[ -d "$B/builds/plain" ] && [ -d "$B/builds/cudnn9" ] || fail "$DEVICE_DIR/caffe-cuda13.tar.xz holds no builds/plain and builds/cudnn9 (an older bundle): run bash tools/device_bundle.sh again" 2
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
[ -n "$BATCH" ] || fail "$DEVICE_DIR/caffe-cuda13.tar.xz holds no nets/time_both_b<batch>.prototxt: run bash tools/device_bundle.sh again" 2
libs() { echo "$B/builds/$1/lib:$B/deps:$CUDA_DIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; }
for build in plain cudnn9; do
  missing=$(LD_LIBRARY_PATH=$(libs $build) ldd "$B/builds/$build/lib/libcaffe.so" "$B/builds/$build/bin/caffe" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
  [ -z "$missing" ] || fail "$build build: libraries not found: $missing(CUDA 13 and cuDNN folders used: ${CUDA_DIRS:-none}; set CUDA13_LIBS)" 2
done
