#!/usr/bin/env bash
# The README's path on a GPU machine that has no network, in one run, from the bundle tools/device_bundle.sh made
# (.device/caffe-cuda13.tar.xz: route 13 + cuDNN 9 and the pycaffe kit): the caffe tool, pycaffe and Boost.Python
# compiled for that machine's own Python and NumPy (tools/build_pycaffe.sh; libcaffe holds no Python, patch 0010);
# the card's compute capability against the library's GPU code (what --gpu 0 checks before a run, layers/device.py);
# the demo (synthetic data -> LMDBs -> `caffe train -gpu 0` with the Python data and loss layers -> evaluation on
# the GPU); tools/evaluate.py --gpu 0 on its weights; the same weights evaluated frame by frame on the GPU and on
# the CPU (layers.device_parity); a few hundred iterations of `caffe train -gpu 0` at the paper's batch 128 with
# the default data-layer workers (the images lent, patch 0012, then copied) and with every core but one, each with
# the data layer's share of the time, beside `caffe time` of the same net (compute alone); the GPU faults a user
# meets, one line each (a GPU id the machine lacks; the card held by another process); last, the card's poses and
# the default batch-128 training again with the fused kernels of patches-cuda/ 0009 (CAFFE_GPU_FUSED=1).
# summary.md, the per-frame poses and the logs (logs.tgz) go to $OUT (else out/device-e2e); with --cpu also the final
# weights and their test set (walking_test_lmdb.tgz), which are too large to come back from a card.
#   bash tools/device_e2e.sh          # on the GPU machine, about 5 minutes (tools/device_session.sh runs it there)
#   bash tools/device_e2e.sh --cpu    # the rehearsal on this machine's CPU: the same steps, short (tests/test_cuda_build.py)
# PYTHON: the machine's interpreter with NumPy, OpenCV and h5py (default python3); the kit's wheels add lmdb, cdflib
# and protobuf. Where the set-up's .venv imports caffe (here), the poses are also compared with this CPU build's.
# E2E_FRAMES, E2E_EPOCHS: the demo's size; E2E_ITERS: the batch-128 iterations (GPU 300, CPU 4).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=gpu; [ "${1:-}" = --cpu ] && MODE=cpu
OUT=${OUT:-$ROOT/out/device-e2e}
DEVICE_DIR=${PARK3D_DEVICE_DIR:-$ROOT/.device}
PY=${PYTHON:-python3}
START=$SECONDS
# the stock GPU layers, except where the last steps ask for the fused ones (a caller's setting would mislabel rows)
unset CAFFE_GPU_FUSED
mkdir -p "$OUT"
fail() { echo "device_e2e: $1" | tee -a "$OUT/summary.md" >&2; exit "${2:-1}"; }  # MESSAGE [CODE]
# shellcheck source=device_env.sh
source "$ROOT/tools/device_env.sh"
LOGS=$WORK/logs
mkdir -p "$LOGS"
pack() { tar czf "$OUT/logs.tgz" -C "$WORK" logs 2>/dev/null; }
# the logs come back also from a run cut short (a timeout's TERM), and the step it was in stops with it
trap 'stop_children; pack; rm -rf "$WORK"' EXIT
# step NAME COMMAND...: its output in logs/NAME.log, one line in summary.md; a failed step ends the run
step() {
  local name=$1 t0=$SECONDS
  shift
  if "$@" > "$LOGS/$name.log" 2>&1; then
    echo "- $name: $((SECONDS - t0)) s" | tee -a "$OUT/summary.md"
  else
    echo "- $name: FAILED after $((SECONDS - t0)) s: $(tail -n 4 "$LOGS/$name.log" | tr '\n' ' ')" | tee -a "$OUT/summary.md"
    exit 1
  fi
}
if [ $MODE = gpu ]; then
  DEV=(--gpu 0) CAFFE_DEV=(-gpu 0)
  FRAMES=${E2E_FRAMES:-400} EPOCHS=${E2E_EPOCHS:-6} ITERS=${E2E_ITERS:-300}
else
  DEV=() CAFFE_DEV=()
  FRAMES=${E2E_FRAMES:-60} EPOCHS=${E2E_EPOCHS:-1} ITERS=${E2E_ITERS:-4}
fi
{
  echo "# device_e2e ($MODE), $(date -u +%FT%TZ)"
  echo; sed 's/^/    /' "$B/share/bundle.txt"
  if [ $MODE = gpu ]; then echo "card: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n1)"; fi
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) cores)"
  echo "Python: $("$PY" -c 'import sys, numpy; print(sys.version.split()[0], "with NumPy", numpy.__version__)' 2>&1 | tail -n1) ($(command -v "$PY"))"
  echo
} > "$OUT/summary.md"
cat "$OUT/summary.md"

step build-pycaffe bash "$ROOT/tools/build_pycaffe.sh" "$B/pycaffe" "$B/builds/cudnn9/lib:$B/deps:$CUDA_DIRS" "$PY" "$WORK/pycaffe"
step wheels "$PY" -m pip install --disable-pip-version-check -q --no-index --no-deps --no-compile --find-links "$B/wheels" \
  --target "$WORK/site" -r "$B/wheels/requirements.txt"
# The kit's caffe tool and pycaffe, the machine's Python first on PATH (the embedded Python of the caffe tool finds
# its prefix, so its site-packages, through the python3 on PATH).
export PYTHONPATH=$WORK/pycaffe/python:$WORK/site:$ROOT
export PARK3D_CAFFE=$WORK/pycaffe/bin/caffe
# (its deps/: the bundle's libraries less those this Python's libpython takes from the system, tools/build_pycaffe.sh)
export LD_LIBRARY_PATH=$WORK/pycaffe/lib:$WORK/pycaffe/deps${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
PATH=$(dirname "$(command -v "$PY")"):$PATH
export PATH
# as the set-up's caffe wrapper does for the user: idle OpenMP threads sleep soon unless the caller chose (docs/design.md)
[ -n "${OMP_WAIT_POLICY+set}" ] || { : "${GOMP_SPINCOUNT=1000}"; export GOMP_SPINCOUNT; }
step import-pycaffe "$PY" -c 'import caffe, numpy; assert "Python" in caffe.layer_type_list(); print(caffe.__file__, numpy.__version__)'
if [ $MODE = gpu ]; then  # what --gpu 0 checks before a run (layers/device.py): the card against the library's GPU code
  echo "    $("$PY" -c 'import caffe
from layers.caffe_build import describe_gpu_code
from layers.device import compute_capability, cudart_path, gpu_code_advice, loaded_gpu_code
cc = compute_capability(cudart_path(), 0)
code = describe_gpu_code(loaded_gpu_code())
print(f"GPU 0: compute capability {cc}; libcaffe holds {code}; the check says: {gpu_code_advice(0, cc) if cc else None}")' 2>&1 | tail -n 1)" |
    tee -a "$OUT/summary.md"
fi

D=$WORK/demo
step demo "$PY" "$ROOT/tools/demo.py" --out "$D" --frames "$FRAMES" --epochs "$EPOCHS" "${DEV[@]}"
grep -E '^Walking, MPJPE|^stage times' "$LOGS/demo.log" | sed 's/^/    /' | tee -a "$OUT/summary.md"
FINAL=$(ls -t "$D"/snapshots/*.caffemodel 2>/dev/null | head -n1)
[ -n "$FINAL" ] || fail "the demo left no .caffemodel in $D/snapshots"
echo "    final weights: $(basename "$FINAL"), $(stat -c %s "$FINAL") bytes, SHA-256 $(sha256sum "$FINAL" | cut -c1-16)" | tee -a "$OUT/summary.md"
if [ $MODE = cpu ]; then
  # the weights and the test set they are evaluated on, so that another Caffe here can evaluate the same frames
  # (tools/distro_check.sh --kit). Not from a card: the device tool brings back 16 MiB a file, the weights are 410 MB,
  # so there the card's poses are compared with the kit's CPU engine on the same machine (below).
  cp "$FINAL" "$OUT/final.caffemodel"
  tar czf "$OUT/walking_test_lmdb.tgz" -C "$D/lmdb" walking_test.lmdb || fail "cannot pack $D/lmdb/walking_test.lmdb"
fi
step evaluate "$PY" "$ROOT/tools/evaluate.py" --lmdb-root "$D/lmdb" --weights "Walking=$FINAL" --out "$WORK/evaluate" --quiet "${DEV[@]}"
# its three tables' own rows: P1, zero-mean, PA (with BatchNorm statistics re-estimated, as evaluate.py does)
grep -E '^Ours \(this run\)' "$LOGS/evaluate.log" | paste -sd ' ' | awk '{print "    tools/evaluate.py, Walking: P1 " $4 ", zero-mean " $9 ", PA " $14 " mm"}' |
  tee -a "$OUT/summary.md"
parity() {  # NAME PYTHON [--gpu 0]: the final weights' per-frame poses on the demo's test set
  local name=$1 py=$2
  shift 2
  step "poses-$name" "$py" -m layers.device_parity evaluate --deploy "$ROOT/prototxt/evaluate_both.prototxt" \
    --weights "$FINAL" --lmdb "$D/lmdb/walking_test.lmdb" --out "$OUT/poses_$name.npz" "$@"
  sed 's/^/    /' "$LOGS/poses-$name.log" | tail -n 1 | tee -a "$OUT/summary.md"
}
compare() {  # A B: one line, and whether it is float rounding
  echo "    $1 against $2: $("$PY" -m layers.device_parity compare "$OUT/poses_$1.npz" "$OUT/poses_$2.npz" 2>&1 | tail -n 1)" |
    tee -a "$OUT/summary.md"
}
if [ $MODE = gpu ]; then
  parity gpu "$PY" --gpu 0
  parity kit-cpu "$PY"
  compare gpu kit-cpu
else
  parity kit-cpu "$PY"
fi
# here: this machine's CPU build (the set-up's pycaffe) on the same weights, where the set-up's venv runs
if (unset PYTHONPATH LD_LIBRARY_PATH; "$ROOT/.venv/bin/python" -c 'import caffe' > /dev/null 2>&1); then
  (unset PYTHONPATH PARK3D_CAFFE LD_LIBRARY_PATH; cd "$ROOT" && parity cpu-build "$ROOT/.venv/bin/python")
  compare "$([ $MODE = gpu ] && echo gpu || echo kit-cpu)" cpu-build
fi

# The paper's batch: caffe train (data layer included) against caffe time (forward + backward alone), read from
# Caffe's INFO lines, which a GLOG_minloglevel from the caller (the test suite's 1) would hide
export GLOG_minloglevel=0
rate() {  # LOG -> images/s of the training iterations after the first display (Caffe's "N iter/s" lines)
  sed -n 's/.*Iteration [0-9]* (\([0-9.e+-]*\) iter\/s.*/\1/p' "$1" | tail -n +2 | sort -g |
    awk -v b=128 '{v[NR] = $1} END {if (NR) printf "%.0f", b * v[int((NR + 1) / 2)]; else printf "nan"}'
}
train128() {  # NAME WORKERS [IMAGES: lent (the default) or copied (PARK3D_DATA_BORROW=0)]
  local dir=$WORK/b128-$1
  "$PY" - "$dir" "$D/lmdb" "$ITERS" "$2" > "$LOGS/solver-$1.log" 2>&1 <<'PYEOF' || fail "cannot write the batch-128 solver (logs/solver-$1.log)"
import sys
from pathlib import Path
from bench.device_faults import paper_batch_solver
out, lmdb, iters, workers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
solver = paper_batch_solver(out, lmdb, iters, display=max(1, iters // 6),
                            workers=workers if workers == "auto" else int(workers))
if workers == "auto":  # what the data layer will make of it beside this Caffe, for the summary
    import os
    from layers.data_layer import default_workers
    from layers.device import caffe_has_cuda
    workers = default_workers(caffe_has_cuda(), os.cpu_count() or 1)
print(f"workers: {workers}")
print(solver)
PYEOF
  step "train-b128-$1" env PARK3D_DATA_BORROW="$([ "${3:-lent}" = copied ] && echo 0 || echo 1)" \
    "$PARK3D_CAFFE" train -solver "$(tail -n 1 "$LOGS/solver-$1.log")" "${CAFFE_DEV[@]}"
  local said
  said=$(grep -m1 -o 'the solver waited for data.*' "$LOGS/train-b128-$1.log")
  { echo "    caffe train, batch 128, ${CAFFE_GPU_FUSED:+CAFFE_GPU_FUSED=$CAFFE_GPU_FUSED, }data-layer workers $2 ($(sed -n 's/^workers: //p' "$LOGS/solver-$1.log")), images ${3:-lent}: $(rate "$LOGS/train-b128-$1.log") images/s (Python data and loss layers included)"
    echo "      data layer: ${said:-no report (it reports after 55 batches)}"; } | tee -a "$OUT/summary.md"
}
# the data layer's share of the solver's time, split into waiting for the workers and handing the batch over,
# reported at any share (layers/data_layer.py, DataWait)
export PARK3D_DATA_WAIT_LIMIT=0
train128 auto auto
train128 copied auto copied
train128 all $(($(nproc) - 1))
step caffe-time "$PARK3D_CAFFE" time -model "$B/nets/time_both_b$BATCH.prototxt" -phase TRAIN -iterations "$([ $MODE = gpu ] && echo 20 || echo 1)" "${CAFFE_DEV[@]}"
awk -v batch="$BATCH" '/Average Forward pass/ {f = $(NF-1)} /Average Backward pass/ {b = $(NF-1)} END {
  if (f != "" && b != "") printf "    caffe time, the same net at batch %d without the data layer and the update: %.0f images/s (forward %.2f + backward %.2f ms)\n", batch, 1000 * batch / (f + b), f, b }' \
  "$LOGS/caffe-time.log" | tee -a "$OUT/summary.md"
# The GPU faults a user meets, as the user meets them (issue 29), one line each (bench/device_faults.py): a GPU id
# the machine does not have, and the card out of memory because another process holds it. They record, and fail
# nothing. With --cpu only the first runs (there it meets the missing driver or card).
step faults "$PY" -m bench.device_faults --lmdb-root "$D/lmdb" --weights "$FINAL" --work "$WORK/faults" \
  --iters "$ITERS" $([ $MODE = cpu ] && echo --cpu)
sed 's/^/    /' "$LOGS/faults.log" | tee -a "$OUT/summary.md"
# The fused kernels of patches-cuda/ 0009 (CAFFE_GPU_FUSED=1: BatchNorm, Scale, bias; opt-in until a card has shown
# them right and faster) on the user's path: the final weights' poses on the card against the kit's CPU engine, and
# the batch-128 training. Last, so that a deadline cuts these first. (On a CPU the variable changes nothing.)
export CAFFE_GPU_FUSED=1
if [ $MODE = gpu ]; then
  parity gpu-fused "$PY" --gpu 0
  compare gpu-fused kit-cpu
fi
train128 fused auto
unset CAFFE_GPU_FUSED
echo "device_e2e: $((SECONDS - START)) s in all" | tee -a "$OUT/summary.md"
