#!/usr/bin/env bash
# Measures this Caffe on a GPU machine that has no network, in one run (issue 9's figures), from the bundle
# tools/device_bundle.sh made (.device/caffe-cuda13.tar.xz): the card and driver; Caffe's GPU gtests of the
# layer types the nets use; `caffe time -gpu 0` of the four variants (the time nets: training's forward and
# backward without the data layer and the SGD update; the deploy and evaluate nets: the test pass's forward);
# and the PyTorch peer (tools/peer_pytorch.py) on the same card. Rows and the log files go to $OUT (else
# out/device-check); summary.md holds the table.
#   bash tools/device_check.sh          # on the GPU machine (the device tool: carry [".device"])
#   bash tools/device_check.sh --cpu    # a dry run of the same steps on this machine's CPU, 1 iteration each
# CUDA 13's libraries: CUDA13_LIBS (folders, colon-separated) if set, else the NVIDIA Python packages beside
# python3's torch, else the set-up's cache (route 13). PEER_PYTHON: the Python holding torch
# (default python3, which holds it on the lent GPU machines). ITERS: iterations per timing (GPU 20, CPU 1).
# PARK3D_DEVICE_DIR: where the bundle is (default .device).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../third_party/caffe/gtest_filters.env
source "$ROOT/third_party/caffe/gtest_filters.env"
MODE=gpu; [ "${1:-}" = --cpu ] && MODE=cpu
OUT=${OUT:-$ROOT/out/device-check}
ITERS=${ITERS:-$([ $MODE = gpu ] && echo 20 || echo 1)}
DEVICE_DIR=${PARK3D_DEVICE_DIR:-$ROOT/.device}
mkdir -p "$OUT"
fail() { echo "device_check: $*" | tee -a "$OUT/summary.md" >&2; exit 1; }
[ -f "$DEVICE_DIR/caffe-cuda13.tar.xz" ] || fail "no $DEVICE_DIR/caffe-cuda13.tar.xz: run bash tools/device_bundle.sh first (and carry .device)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
tar xJf "$DEVICE_DIR/caffe-cuda13.tar.xz" -C "$WORK" || fail "cannot unpack $DEVICE_DIR/caffe-cuda13.tar.xz"
B=$WORK/caffe-cuda13
CACHE_ROOT=${PARK3D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/park3dpose}
CUDA_DIRS=${CUDA13_LIBS:-$(python3 - "$CACHE_ROOT" <<'PY'
import glob, os, site, sys
names = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libnccl.so.2")
roots = [os.path.join(p, "nvidia") for p in site.getsitepackages() + sys.path] + glob.glob(os.path.join(sys.argv[1], "cuda-13*")) \
    + glob.glob(os.path.join(sys.argv[1], "nccl-*cu13*"))
found = {}
for root in roots:
    for name in names:
        for path in glob.glob(os.path.join(root, "**", name), recursive=True):
            found.setdefault(name, os.path.dirname(path))
print(":".join(sorted(set(found.values()))))
PY
)}
export LD_LIBRARY_PATH="$B/lib:$B/deps:$CUDA_DIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(ldd "$B/lib/libcaffe.so" "$B/bin/caffe" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
[ -z "$missing" ] || fail "libraries not found: $missing(CUDA 13 folders used: ${CUDA_DIRS:-none}; set CUDA13_LIBS)"
DEV=(); [ $MODE = gpu ] && DEV=(-gpu 0)
BATCH=$(ls "$B/nets" | sed -n 's/^time_both_b\([0-9]*\)\.prototxt$/\1/p')
{
  echo "# device_check ($MODE), $(date -u +%FT%TZ), batch $BATCH, $ITERS iterations per timing"
  echo; echo "$(cat "$B/share/bundle.txt")"
  if [ $MODE = gpu ]; then
    echo "card: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n1)"
  else
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) cores)"
  fi
  echo "CUDA libraries from: $CUDA_DIRS"
} > "$OUT/summary.md"
cat "$OUT/summary.md"

if [ $MODE = gpu ]; then
  "$B/bin/caffe" device_query "${DEV[@]}" > "$OUT/device_query.log" 2>&1 || echo "caffe device_query failed (see device_query.log)" | tee -a "$OUT/summary.md"
  FILTER=$GTEST_FILTER_GPU_CASES
else
  FILTER=$GTEST_FILTER_CUDA_BUILD_CPU_CASES
fi
t0=$SECONDS
(cd "$B/share/caffe_gtest_root" && "$B/bin/caffe_layer_tests" --gtest_filter="$FILTER") > "$OUT/gtests.log" 2>&1
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests.*/\1/p' "$OUT/gtests.log")
failed=$(grep -c '^\[  FAILED  \] [A-Za-z]' "$OUT/gtests.log")
echo "Caffe's gtests ($FILTER): ${passed:-0} passed, $failed failed, $((SECONDS - t0)) s" | tee -a "$OUT/summary.md"

# caffe time: "Average Forward pass: X ms." and "Average Backward pass: Y ms."
timing() {  # NET PHASE -> "forward_ms backward_ms"
  local log="$OUT/time_$(basename "$1" .prototxt).log"
  GLOG_minloglevel=0 "$B/bin/caffe" time -model "$1" -phase "$2" -iterations "$ITERS" "${DEV[@]}" > "$log" 2>&1
  awk '/Average Forward pass/ {f=$(NF-1)} /Average Backward pass/ {b=$(NF-1)} END {print (f==""?"nan":f), (b==""?"nan":b)}' "$log"
}
{
  echo; echo "| variant | training forward+backward, ms | training img/s | deploy forward img/s | evaluate forward img/s |"
  echo "|---|---:|---:|---:|---:|"
} | tee -a "$OUT/summary.md"
for variant in baseline multireg 2dcls both; do
  read -r tf tb < <(timing "$B/nets/time_${variant}_b$BATCH.prototxt" TRAIN)
  read -r df _ < <(timing "$B/nets/deploy_${variant}_b$BATCH.prototxt" TEST)
  read -r ef _ < <(timing "$B/nets/evaluate_${variant}_b$BATCH.prototxt" TEST)
  awk -v v="$variant" -v n="$BATCH" -v tf="$tf" -v tb="$tb" -v df="$df" -v ef="$ef" 'BEGIN {
    printf "| %s | %.2f | %.0f | %.0f | %.0f |\n", v, tf + tb, n * 1000 / (tf + tb), n * 1000 / df, n * 1000 / ef }' |
    tee -a "$OUT/summary.md"
  [ "$variant" = both ] && CAFFE_BOTH_MS=$(awk -v a="$tf" -v b="$tb" 'BEGIN {print a + b}')
done

PEER_DEVICE=cpu; [ $MODE = gpu ] && PEER_DEVICE=cuda:0
PEER_PYTHON=${PEER_PYTHON:-python3}  # the interpreter that holds torch (on the GPU machine: python3)
if "$PEER_PYTHON" "$ROOT/tools/peer_pytorch.py" --batch "$BATCH" --iters "$ITERS" --device "$PEER_DEVICE" > "$OUT/peer.json" 2> "$OUT/peer.log"; then
  "$PEER_PYTHON" - "$OUT/peer.json" "$BATCH" "$CAFFE_BOTH_MS" <<'PY' | tee -a "$OUT/summary.md"
import json, sys
peer, batch, caffe_ms = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]), int(sys.argv[2]), float(sys.argv[3])
print(f"\nPyTorch {peer['torch']} on {peer['device']}, full model (both), batch {batch}: forward+backward "
      f"{peer['forward_backward_ms']:.2f} ms ({batch * 1000 / peer['forward_backward_ms']:.0f} img/s), train step with SGD "
      f"{peer['train_step_ms']:.2f} ms, deploy forward {peer['deploy_forward_ms']:.2f} ms")
print(f"Caffe / PyTorch speed, forward+backward of the full model: {peer['forward_backward_ms'] / caffe_ms:.2f} (> 1: Caffe is faster)")
PY
else
  echo "PyTorch peer failed: $(tail -n1 "$OUT/peer.log")" | tee -a "$OUT/summary.md"
fi
