#!/usr/bin/env bash
# Measures this Caffe on a GPU machine that has no network, in one run of at most 8 minutes (issues 9, 22, 28),
# from the bundle tools/device_bundle.sh made (.device/caffe-cuda13.tar.xz: route 13 without and with cuDNN 9): the
# card, the driver and the cuDNN found; `caffe time -gpu 0` of the four variants (the time nets: training's forward
# and backward without the data layer and the SGD update; the deploy and evaluate nets: the test pass's forward) in
# each build in FP32, and the full model's with TF32 tensor cores (CAFFE_TF32=1, the cuDNN build's option), with the
# cuDNN algorithms queried before every pass (CAFFE_CUDNN_REQUERY=1, upstream's way, against patch 0008's per
# shape), with the fused BatchNorm, Scale and bias kernels (CAFFE_GPU_FUSED=1, patches-cuda/ 0009), with a cuDNN
# workspace of WS_MB (default 1024) MiB per algorithm where upstream allows 8, with the algorithms timed, not guessed
# (CAFFE_CUDNN_WORKSPACE_MB, CAFFE_CUDNN_FIND=1: patches-cudnn/ 0011) and with all of them; the full model's deploy
# and evaluate nets folded (BatchNorm + Scale into the layers before them: what prediction and tools/evaluate.py
# run) in the rows whose convolutions differ; the PyTorch peer (tools/peer_pytorch.py) on the same card in FP32 and
# in TF32 (its deploy net also folded), and Caffe / PyTorch for each; where the full model's training step goes,
# per layer type, in each row; then Caffe's GPU gtests of the layer types the nets use (the cuDNN
# build's, with its CuDNN* layers; the fused kernels' layers with CAFFE_GPU_FUSED=1; the cuDNN convolution with
# CAFFE_CUDNN_FIND=1; the build without cuDNN's), as the time left allows. $OUT (else out/device-check) gets
# summary.md (the table, the ratios, the profile, one line per gtest set, and whether pycaffe can be built there for
# PYTHON, default python3, as tools/device_e2e.sh will), peer_tf32-{off,on}.json and logs.tgz (each convolution's
# chosen algorithms, math and workspace are in the cuDNN timings' logs). Exit status 0 only where
# every timing gave its figure, the peer ran and every gtest case ran and passed; 2 for a missing or damaged bundle.
#   bash tools/device_check.sh          # on the GPU machine (the device tool: carry [".device"])
#   bash tools/device_check.sh --cpu    # a dry run of the same steps on this machine's CPU, 1 iteration each
# CUDA 13's libraries and cuDNN 9: CUDA13_LIBS (folders, colon-separated) if set, else the NVIDIA Python packages
# beside python3's torch, else the set-up's cache (route 13). PEER_PYTHON: the Python holding torch (default
# python3, which holds it on the lent GPU machines; --cpu goes on without the peer where it has no torch). ITERS:
# iterations per timing (GPU 10, as the H200's figures; CPU 1). GTESTS=0 skips the gtests, TIMINGS=0 the timings
# and the peer; WS_MB: the cuDNN workspace limit of the -ws, -find and -all rows (1024); GTEST_JOBS:
# gtest processes at once (GPU 1, CPU the cores); GTEST_TIMEOUT: seconds per test case (GPU 90, CPU 600);
# KIT_SECONDS: no gtest runs past this many seconds from the start (GPU 470, CPU a day). OMP_NUM_THREADS: threads
# per gtest process (default: the cores shared among GTEST_JOBS).
# PARK3D_DEVICE_DIR: where the bundle is.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../third_party/caffe/gtest_filters.env
source "$ROOT/third_party/caffe/gtest_filters.env"
MODE=gpu; [ "${1:-}" = --cpu ] && MODE=cpu
OUT=${OUT:-$ROOT/out/device-check}
ITERS=${ITERS:-$([ $MODE = gpu ] && echo 10 || echo 1)}
DEVICE_DIR=${PARK3D_DEVICE_DIR:-$ROOT/.device}
START=$SECONDS
mkdir -p "$OUT"
fail() { echo "device_check: $1" | tee -a "$OUT/summary.md" >&2; exit "${2:-1}"; }  # MESSAGE [CODE]
# shellcheck source=device_env.sh
source "$ROOT/tools/device_env.sh"
# the logs in WORK/logs, packed into OUT/logs.tgz after each step and when the kit ends (a timeout's TERM too), so that
# OUT holds four files: summary.md, the peer's two rows and logs.tgz
LOGS=$WORK/logs
mkdir -p "$LOGS"
pack() { tar czf "$OUT/logs.tgz" -C "$WORK" logs 2>/dev/null || true; }
# what runs when the kit ends (background gtests, a caffe time) ends with it (tools/device_env.sh's stop_children)
trap 'stop_children; pack; rm -rf "$WORK"' EXIT
# no gtest case starts, and none runs on, past END: the whole kit within KIT_SECONDS on a card (one call)
END=$((START + ${KIT_SECONDS:-$([ $MODE = gpu ] && echo 470 || echo 86400)}))
CUDNN_SO=$(LD_LIBRARY_PATH=$(libs cudnn9) ldd "$B/builds/cudnn9/lib/libcaffe.so" | awk '/libcudnn\.so/ {print $3; exit}')
CUDNN_RUNTIME=$(python3 -c "import ctypes, sys; v = ctypes.CDLL(sys.argv[1]).cudnnGetVersion(); print(f'{v // 10000}.{v // 100 % 100}.{v % 100}')" "$CUDNN_SO" 2>&1 | tail -n1)
DEV=(); [ $MODE = gpu ] && DEV=(-gpu 0)
{
  echo "# device_check ($MODE), $(date -u +%FT%TZ), batch $BATCH, $ITERS iterations per timing"
  echo; sed 's/^/    /' "$B/share/bundle.txt"
  if [ $MODE = gpu ]; then
    echo "card: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n1)"
  else
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) cores)"
  fi
  echo "CUDA libraries from: $CUDA_DIRS"
  echo "cuDNN at run time: $CUDNN_RUNTIME ($CUDNN_SO)"
  # what tools/device_e2e.sh (issue 29) will need of this machine, found out in this call
  echo "for tools/device_e2e.sh: $(bash "$ROOT/tools/build_pycaffe.sh" --check "${PYTHON:-python3}" 2>&1 | tail -n 1)"
} > "$OUT/summary.md"
cat "$OUT/summary.md"

if [ $MODE = gpu ]; then
  LD_LIBRARY_PATH=$(libs plain) "$B/builds/plain/bin/caffe" device_query "${DEV[@]}" > "$LOGS/device_query.log" 2>&1 ||
    echo "caffe device_query failed (see logs/device_query.log)" | tee -a "$OUT/summary.md"
  FILTER=$GTEST_FILTER_GPU_CASES
  FUSED_FILTER=$GTEST_FILTER_FUSED_GPU_CASES
  FIND_FILTER=$GTEST_FILTER_CUDNN_CONV_GPU_CASES
else
  FILTER=$GTEST_FILTER_CUDA_BUILD_CPU_CASES
  FUSED_FILTER=$GTEST_FILTER_FUSED_CPU_CASES
  FIND_FILTER=$GTEST_FILTER_CUDNN_CONV_CPU_CASES
fi
# room: before each step, at least 2 MB free where the logs are; else the kit stops there (a full disk would leave
# every later step without a log, so without a figure or a reason)
room() {
  [ "$(df -Pk "$WORK" | awk 'NR == 2 {print $4}')" -ge 2048 ] ||
    fail "the disk holding $WORK is full: the figures above stand, the rest were not measured; free some space there, or set TMPDIR to a folder on another disk, and run again"
}
# why LOG: a failed step's reason, the last line of its log
why() { tail -n 1 "$1" 2>/dev/null; }
# the cuDNN workspace limit of the -ws, -find and -all rows and of the gtests with CAFFE_CUDNN_FIND=1 (MiB; patch 0011)
WS="CAFFE_CUDNN_WORKSPACE_MB=${WS_MB:-1024}"
# NOFIG: the timings that gave no figure, each with its reason below the table; FAILED: the other steps without a
# full result, named in the last line; either makes the exit status 1
NOFIG=() FAILED=()
# caffe time: "Average Forward pass: X ms." and "Average Backward pass: Y ms."
timing() {  # LABEL MATH BUILD SETTINGS NET PHASE -> "forward_ms backward_ms exit log"; SETTINGS: VAR=VALUE,... or -
  local log="$LOGS/time_$1_${2,,}_$(basename "$5" .prototxt).log" settings=()
  shift 2
  [ "$2" = - ] || IFS=, read -ra settings <<< "$2"
  # the row's settings alone: none of these from the caller's environment
  env -u CAFFE_TF32 -u CAFFE_CUDNN_REQUERY -u CAFFE_GPU_FUSED -u CAFFE_CUDNN_WORKSPACE_MB -u CAFFE_CUDNN_FIND \
    LD_LIBRARY_PATH="$(libs "$1")" GLOG_minloglevel=0 "${settings[@]}" timeout 120 \
    "$B/builds/$1/bin/caffe" time -model "$3" -phase "$4" -iterations "$ITERS" "${DEV[@]}" > "$log" 2>&1
  local code=$? fb
  fb=$(awk '/Average Forward pass/ {f=$(NF-1)} /Average Backward pass/ {b=$(NF-1)} END {print (f==""?"nan":f), (b==""?"nan":b)}' \
    "$log" 2>/dev/null) || fb="nan nan"
  echo "$fb $code $log"
}
# figure LABEL FORWARD BACKWARD EXIT LOG: records a timing that gave no figure (BACKWARD "-" for a forward-only net)
figure() {
  if [ "$2" = nan ] || [ "$3" = nan ]; then
    NOFIG+=("$1, $(basename "$5" .log): caffe time exit $4 ($(why "$5"))")
  fi
}
# forward VAR LABEL MATH BUILD SETTINGS NET: the net's forward pass (TEST phase) in ms into VAR, "nan" where caffe
# time gave no figure (recorded by figure)
forward() {
  local ms code log
  room
  read -r ms _ code log < <(timing "$2" "$3" "$4" "$5" "$6" TEST)
  figure "$2 $3" "$ms" - "$code" "$log"
  printf -v "$1" %s "$ms"
}
if [ "${TIMINGS:-1}" != 0 ]; then  # TIMINGS=0: the gtests alone
{
  [ $MODE = cpu ] && echo && echo "A --cpu rehearsal: every build runs Caffe's CPU engine here (no cuDNN, no TF32), 1 iteration: the rows check the steps, their figures mean nothing."
  echo; echo "| build | math | variant | training forward+backward, ms | training img/s | deploy forward img/s | evaluate forward img/s |"
  echo "|---|---|---|---:|---:|---:|---:|"
} | tee -a "$OUT/summary.md"
: > "$WORK/caffe_both.txt"
# LABEL BUILD SETTINGS VARIANTS...; SETTINGS: the environment of the run (VAR=VALUE,..., or - for none), CAFFE_TF32=1
# for TF32 math. cudnn9-requery: the cuDNN build querying its convolution algorithms before every pass, as upstream
# Caffe did (patch 0008 keeps them per input shape); -fused: the BatchNorm, Scale and bias kernels of patches-cuda/
# 0009; cudnn9-ws: a cuDNN workspace of up to WS MiB per algorithm where upstream allows 8 (patch 0011); cudnn9-find: the
# same, the algorithms chosen by running them (cudnnFind*, PyTorch's cudnn.benchmark); cudnn9-all: -fused and -find
for run in "plain plain - baseline multireg 2dcls both" "cudnn9 cudnn9 - baseline multireg 2dcls both" \
           "cudnn9 cudnn9 CAFFE_TF32=1 both" "cudnn9-requery cudnn9 CAFFE_CUDNN_REQUERY=1 both" \
           "plain-fused plain CAFFE_GPU_FUSED=1 both" \
           "cudnn9-fused cudnn9 CAFFE_GPU_FUSED=1 both" "cudnn9-fused cudnn9 CAFFE_GPU_FUSED=1,CAFFE_TF32=1 both" \
           "cudnn9-ws cudnn9 $WS both" "cudnn9-ws cudnn9 $WS,CAFFE_TF32=1 both" \
           "cudnn9-find cudnn9 $WS,CAFFE_CUDNN_FIND=1 both" \
           "cudnn9-all cudnn9 $WS,CAFFE_CUDNN_FIND=1,CAFFE_GPU_FUSED=1 both" \
           "cudnn9-all cudnn9 $WS,CAFFE_CUDNN_FIND=1,CAFFE_GPU_FUSED=1,CAFFE_TF32=1 both"; do
  read -r label build settings variants <<< "$run"
  math=$(grep -q CAFFE_TF32=1 <<< "$settings" && echo TF32 || echo FP32)
  for variant in $variants; do
    room
    read -r tf tb code tlog < <(timing "$label" "$math" "$build" "$settings" "$B/nets/time_${variant}_b$BATCH.prototxt" TRAIN)
    figure "$label $math" "$tf" "$tb" "$code" "$tlog"
    forward df "$label" "$math" "$build" "$settings" "$B/nets/deploy_${variant}_b$BATCH.prototxt"
    forward ef "$label" "$math" "$build" "$settings" "$B/nets/evaluate_${variant}_b$BATCH.prototxt"
    awk -v b="$label" -v m="$math" -v v="$variant" -v n="$BATCH" -v tf="$tf" -v tb="$tb" -v df="$df" -v ef="$ef" 'BEGIN {
      printf "| %s | %s | %s | %.2f | %.0f | %.0f | %.0f |\n", b, m, v, tf + tb, n * 1000 / (tf + tb), n * 1000 / df, n * 1000 / ef }' |
      tee -a "$OUT/summary.md"
    # the full model's rows, with its training timing's log (the per-layer lines the profile below sums)
    [ "$variant" = both ] && echo "$label $math $tf $tb $df $tlog" >> "$WORK/caffe_both.txt"
  done
done
# The full model's deploy and evaluation nets folded (BatchNorm + Scale into the layers before them), as
# tools/evaluate.py and prediction run them: forward only, in the rows whose convolutions differ (the fused kernels
# and the requery row change nothing a folded net runs)
{ echo; echo "| build | math | deploy folded, forward img/s | evaluate folded, forward img/s |"; echo "|---|---|---:|---:|"; } |
  tee -a "$OUT/summary.md"
: > "$WORK/caffe_folded.txt"
for run in "plain plain -" "cudnn9 cudnn9 -" "cudnn9 cudnn9 CAFFE_TF32=1" "cudnn9-find cudnn9 $WS,CAFFE_CUDNN_FIND=1"; do
  read -r label build settings <<< "$run"
  math=$(grep -q CAFFE_TF32=1 <<< "$settings" && echo TF32 || echo FP32)
  forward df "$label" "$math" "$build" "$settings" "$B/nets/deploy_both_folded_b$BATCH.prototxt"
  forward ef "$label" "$math" "$build" "$settings" "$B/nets/evaluate_both_folded_b$BATCH.prototxt"
  awk -v b="$label" -v m="$math" -v n="$BATCH" -v df="$df" -v ef="$ef" 'BEGIN {
    printf "| %s | %s | %.0f | %.0f |\n", b, m, n * 1000 / df, n * 1000 / ef }' | tee -a "$OUT/summary.md"
  echo "$label $math $df" >> "$WORK/caffe_folded.txt"
done
[ ${#NOFIG[@]} = 0 ] || printf -- '- no figure: %s\n' "${NOFIG[@]}" | tee -a "$OUT/summary.md"
[ ${#NOFIG[@]} = 0 ] || FAILED+=("${#NOFIG[@]} timings (below the table)")

PEER_DEVICE=cpu; [ $MODE = gpu ] && PEER_DEVICE=cuda:0
PEER_PYTHON=${PEER_PYTHON:-python3}  # the interpreter that holds torch (on the GPU machine: python3)
# the --cpu rehearsal goes on without the peer where that Python has no torch; on a card that is a failure
PEERS="off on"
if [ $MODE = cpu ] && ! "$PEER_PYTHON" -c 'import torch' 2>/dev/null; then
  echo "PyTorch peer skipped: $PEER_PYTHON has no torch (set PEER_PYTHON to one that has)" | tee -a "$OUT/summary.md"
  PEERS=""
fi
for tf32 in $PEERS; do
  room
  if ! "$PEER_PYTHON" "$ROOT/tools/peer_pytorch.py" --batch "$BATCH" --iters "$ITERS" --device "$PEER_DEVICE" --tf32 $tf32 \
      > "$OUT/peer_tf32-$tf32.json" 2> "$LOGS/peer_tf32-$tf32.log"; then
    echo "PyTorch peer (TF32 $tf32) failed: $(why "$LOGS/peer_tf32-$tf32.log")" | tee -a "$OUT/summary.md"
    FAILED+=("the PyTorch peer with TF32 $tf32")
  fi
done
"$PEER_PYTHON" - "$OUT" "$BATCH" "$WORK/caffe_both.txt" "${WS#*=}" "$WORK/caffe_folded.txt" <<'PY' | tee -a "$OUT/summary.md"
import json, os, sys
out, batch, ws = sys.argv[1], int(sys.argv[2]), sys.argv[4]
peers = {}
for tf32, math in (("off", "FP32"), ("on", "TF32")):
    path = os.path.join(out, f"peer_tf32-{tf32}.json")
    lines = open(path).read().strip().splitlines() if os.path.exists(path) else []
    if lines:
        peers[math] = peer = json.loads(lines[-1])
        print(f"\nPyTorch {peer['torch']} on {peer['device']} ({math}; cuDNN {peer.get('cudnn')}), full model (both), batch {batch}: "
              f"forward+backward {peer['forward_backward_ms']:.2f} ms ({batch * 1000 / peer['forward_backward_ms']:.0f} img/s), "
              f"train step with SGD {peer['train_step_ms']:.2f} ms, deploy forward {peer['deploy_forward_ms']:.2f} ms "
              f"({batch * 1000 / peer['deploy_forward_ms']:.0f} img/s), folded {peer['deploy_forward_folded_ms']:.2f} ms "
              f"({batch * 1000 / peer['deploy_forward_folded_ms']:.0f} img/s)")
print("\nCaffe / PyTorch speed, full model, same math (> 1: Caffe is faster):" + ("" if peers else " no PyTorch figure"))
rows = {}
for line in open(sys.argv[3]):
    build, math, tf, tb, df = line.split()[:5]
    if "nan" in (tf, tb, df):
        continue
    rows[build, math] = (float(tf) + float(tb), float(df))
    if math in peers:
        peer = peers[math]
        print(f"- {build} {math}: training (forward+backward) {peer['forward_backward_ms'] / rows[build, math][0]:.2f}, "
              f"deploy inference {peer['deploy_forward_ms'] / rows[build, math][1]:.2f}")
for line in open(sys.argv[5]):
    build, math, df = line.split()
    if df != "nan" and math in peers:
        print(f"- {build} {math}, the deploy net folded (as prediction runs it) against PyTorch's folded too: deploy "
              f"inference {peers[math]['deploy_forward_folded_ms'] / float(df):.2f}")
if ("cudnn9", "FP32") in rows and ("cudnn9-requery", "FP32") in rows:
    (kept_t, kept_d), (again_t, again_d) = rows["cudnn9", "FP32"], rows["cudnn9-requery", "FP32"]
    print(f"\ncuDNN algorithms kept per input shape (patch 0008) against queried before every pass, full model, FP32 "
          f"(> 1: keeping is faster): training {again_t / kept_t:.2f}, deploy inference {again_d / kept_d:.2f}")
for build in ("plain", "cudnn9"):
    if (build, "FP32") in rows and (build + "-fused", "FP32") in rows:
        (stock_t, stock_d), (fused_t, fused_d) = rows[build, "FP32"], rows[build + "-fused", "FP32"]
        print(f"\nCAFFE_GPU_FUSED=1 (patches-cuda/ 0009) against the stock layers, {build} build, full model, FP32 "
              f"(> 1: fused is faster): training {stock_t / fused_t:.2f}, deploy inference {stock_d / fused_d:.2f}")
for new, old, what in (
        ("cudnn9-ws", "cudnn9", f"CAFFE_CUDNN_WORKSPACE_MB={ws} (patch 0011) against upstream's 8 MiB"),
        ("cudnn9-find", "cudnn9-ws", "CAFFE_CUDNN_FIND=1 (algorithms timed) against cuDNN's heuristics, same workspace"),
        ("cudnn9-all", "cudnn9", "the fused kernels, the workspace and timed algorithms together against the cuDNN build without them")):
    for math in ("FP32", "TF32"):
        if (new, math) in rows and (old, math) in rows:
            (old_t, old_d), (new_t, new_d) = rows[old, math], rows[new, math]
            print(f"\n{what}, full model, {math} (> 1: {new} is faster): training {old_t / new_t:.2f}, "
                  f"deploy inference {old_d / new_d:.2f}")
PY
# where a training step's time goes, for each row of the full model above: caffe time's per-layer lines summed by
# layer type (bench/layer_profile.py, standard library only; the types from the bundle's layer_types.json), and for
# the cuDNN rows on a card the math of the algorithms their convolutions chose (TF32 engaged or not)
PROFILE=()
while read -r label math _ _ _ log; do
  PROFILE+=("$label $math=$log")
done < "$WORK/caffe_both.txt"
{
  echo; echo "Where the full model's training step goes (caffe time, per layer type, forward + backward, ms):"; echo
  python3 "$ROOT/bench/layer_profile.py" "$B/nets/layer_types.json" "time_both_b$BATCH.prototxt" "${PROFILE[@]}" 2>&1
} | tee -a "$OUT/summary.md"
pack
fi  # TIMINGS
# gtests LABEL BUILD FILTER [VAR=VALUE...]: Caffe's gtests of the nets' layer types, one test case (a layer type
# and its Dtype, BatchNormLayerTest/2 say) per process, GTEST_JOBS processes at once, each case stopped at
# GTEST_TIMEOUT and none started past the kit's END. On a card one at a time: processes sharing a GPU are
# time-sliced, and on the H200 (16 shards at once) every Neuron gradient test took the same 2.28 s whatever its
# function: the time went to waiting, and the BatchNorm and Convolution gradient tests never finished. One summary
# line: tests passed, and by name those failed, cut off, crashed and not started; the logs in logs/gtests_LABEL/.
gtests() {
  local label=$1 build=$2 filter=$3 t0=$SECONDS case cases tests left
  local dir=$LOGS/gtests_${1// /_} bin=$B/builds/$2/bin/caffe_layer_tests not_started=()
  shift 3
  mkdir -p "$dir"
  (cd "$B/share/caffe_gtest_root" && LD_LIBRARY_PATH=$(libs "$build") "$bin" --gtest_list_tests --gtest_filter="$filter") \
    > "$dir/list.txt" 2>&1
  # gtest lists each case as "CASE." and its tests indented below it: CASE.TEST per line
  awk '/^[A-Za-z][A-Za-z0-9_\/]*\.$/ {c = $1; next} /^  [A-Za-z]/ && c != "" {print c $1}' "$dir/list.txt" > "$dir/tests.txt"
  mapfile -t cases < <(sed 's/\.[^.]*$//' "$dir/tests.txt" | uniq)
  for case in "${cases[@]}"; do
    left=$((END - SECONDS))
    if [ $left -lt 10 ]; then not_started+=("$case"); continue; fi
    room
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    tests=$(grep "^${case}\.[^.]*$" "$dir/tests.txt" | paste -sd:)
    (echo "case $case"; t=$SECONDS; cd "$B/share/caffe_gtest_root" && env OMP_NUM_THREADS="$THREADS" "$@" \
      LD_LIBRARY_PATH="$(libs "$build")" timeout $((left < TIMEOUT ? left : TIMEOUT)) "$bin" \
      --gtest_filter="$tests"
      echo "exit $? after $((SECONDS - t)) s") > "$dir/case-${case//\//_}.log" 2>&1 &
  done
  wait
  local logs=("$dir"/case-*.log) passed failed ended cut crashed unlogged f
  [ -e "${logs[0]}" ] || logs=()
  passed=$(cat /dev/null "${logs[@]}" | sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}.*/\1/p' | awk '{n += $1} END {print n + 0}')
  failed=$(cat /dev/null "${logs[@]}" | sed -n 's/^\[  FAILED  \] \([A-Za-z][^ ,]*\).*/\1/p' | sort -u | paste -sd ' ' -)
  # "CODE TEST" for each process that ended other than passed (0) or failed (1), TEST the one it was in (or its case,
  # ended after its tests): cut off (timeout's 124) or crashed (an abort, a CUDA check)
  ended=$(for f in "${logs[@]}"; do
    awk '/^case / {name = $2 "(after-its-tests)"} /^\[ RUN      \] / {run = $4}
         /^\[       OK \] / || /^\[  FAILED  \] [A-Za-z]/ {run = ""}
         /^exit / {code = $2} END {if (code != 0 && code != 1) print code, (run != "" ? run : name)}' "$f"
  done | sort -u -k2)
  # a case whose log does not end with its exit status: the log could not be written (a full disk)
  unlogged=$(for case in "${cases[@]}"; do
    f="$dir/case-${case//\//_}.log"
    [ -e "$f" ] || [[ " ${not_started[*]} " != *" $case "* ]] || continue
    grep -q '^exit ' "$f" 2>/dev/null || echo "$case"
  done | paste -sd ' ' -)
  cut=$(awk '$1 == 124 {print $2}' <<< "$ended" | paste -sd ' ' -)
  crashed=$(awk 'NF && $1 != 124 {print $2 " (exit " $1 ")"}' <<< "$ended" | paste -sd ' ' -)
  echo "$label, Caffe's gtests ($filter; ${#cases[@]} cases, $JOBS at a time): $passed passed, failed: ${failed:-none}, cut off by GTEST_TIMEOUT: ${cut:-none}, crashed: ${crashed:-none}, not started in the kit's time: ${not_started[*]:-none}$([ -z "$unlogged" ] || echo ", left no log: $unlogged"), $((SECONDS - t0)) s" |
    tee -a "$OUT/summary.md"
  [ ${#cases[@]} -gt 0 ] || echo "    (no test case listed: $(why "$dir/list.txt"))" | tee -a "$OUT/summary.md"
  [ ${#cases[@]} -gt 0 ] && [ -z "$failed$cut$crashed$unlogged${not_started[*]}" ] || FAILED+=("the $label's gtests")
  pack
}
JOBS=${GTEST_JOBS:-$([ $MODE = gpu ] && echo 1 || nproc)}
TIMEOUT=${GTEST_TIMEOUT:-$([ $MODE = gpu ] && echo 90 || echo 600)}
# OpenMP threads per gtest process (the bundle's OpenBLAS is its OpenMP build): the cores shared among the JOBS
# processes. Unset, each process starts one thread per core, and JOBS of them spin-wait for cores the others hold: on
# 2 cores the CPU gtests took 181 s against 16 s with one thread each, and in CI past 29 min (docs/benchmarks.md).
# OMP_NUM_THREADS set by the caller stands.
THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1 ))}
if [ "${GTESTS:-1}" != 0 ]; then
  gtests "cudnn9 build" cudnn9 "$FILTER"
  # the fused kernels of patches-cuda/ (CAFFE_GPU_FUSED=1): the gtests of the layers they change
  gtests "cudnn9 build with CAFFE_GPU_FUSED=1" cudnn9 "$FUSED_FILTER" CAFFE_GPU_FUSED=1
  # the convolution with a larger workspace and its algorithms timed (patch 0011): the cuDNN convolution's gtests
  gtests "cudnn9 build with CAFFE_CUDNN_FIND=1 and $WS" cudnn9 "$FIND_FILTER" CAFFE_CUDNN_FIND=1 "$WS"
  gtests "plain build" plain "$FILTER"
fi
# the exit status: 0 where every timing gave its figures, the peer ran and every gtest case ran and passed; the last
# line of summary.md says the same (checked: a full OUT would leave it unsaid)
LAST="device_check: $((SECONDS - START)) s in all$([ ${#FAILED[@]} = 0 ] || printf '; without a full result: %s' "$(printf '%s, ' "${FAILED[@]}" | sed 's/, $//')")"
echo "$LAST" | tee -a "$OUT/summary.md"
[ "$(tail -n 1 "$OUT/summary.md" 2>/dev/null)" = "$LAST" ] || { echo "device_check: could not write $OUT/summary.md (a full disk?)" >&2; exit 1; }
[ ${#FAILED[@]} = 0 ]
