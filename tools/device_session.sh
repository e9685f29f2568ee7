#!/usr/bin/env bash
# One call to a lent GPU machine: the whole of what a card is needed for, from the bundle tools/device_bundle.sh
# made, within SESSION_SECONDS (default 480: with the machine's start, one call of a session's 15 minutes leaves
# room for a short rerun on the warm machine). Three parts, in this order, each given what is left of the time:
#   timings  tools/device_check.sh without its gtests: `caffe time` of every row, the PyTorch peer, the ratios and
#            where the training step goes (issue 28)
#   e2e      tools/device_e2e.sh: pycaffe for the machine's Python, the demo with `caffe train -gpu 0`,
#            tools/evaluate.py --gpu 0, the card's poses against the CPU engine's, batch 128 (issue 29)
#   gtests   tools/device_check.sh's GPU gtests alone, until the deadline (cases left out are named)
# OUT (else out/device-session) gets at most eight files, what the device tool brings back: summary.md (each part's
# summary in turn, then one line), and each part's other files packed as PART.tgz (the peer's rows, the poses, the
# logs); in a --cpu rehearsal also the demo's weights and test set (final.caffemodel, walking_test_lmdb.tgz), for a
# comparison with this machine's CPU build. A part that runs to the deadline is stopped with TERM (its logs are
# packed); the parts after it are named as not started. Exit status 0 only where every part ran and passed; 2 for a
# missing or damaged bundle (the part's one line says which), before anything else runs.
#   bash tools/device_session.sh          # on the GPU machine: the device tool, carry [".device"], timeout_s 540
#   bash tools/device_session.sh --cpu    # the rehearsal here (each part's --cpu)
# PARTS: the parts to run (default "timings e2e gtests"; a rerun: PARTS=gtests, say). TIMINGS_SECONDS: the most the
# timings may take (GPU 270: the H200's first 10 rows took 109 s with the peer, the kit has 18 and 4 folded). The parts' own variables
# (PYTHON, PEER_PYTHON, ITERS, WS_MB, E2E_ITERS, ...) pass through; PARK3D_DEVICE_DIR: where the bundle is.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=gpu; FLAG=(); [ "${1:-}" = --cpu ] && MODE=cpu && FLAG=(--cpu)
OUT=${OUT:-$ROOT/out/device-session}
DEVICE_DIR=${PARK3D_DEVICE_DIR:-$ROOT/.device}
START=$SECONDS
END=$((START + ${SESSION_SECONDS:-$([ $MODE = gpu ] && echo 480 || echo 86400)}))
PARTS=${PARTS:-timings e2e gtests}
TIMINGS_CAP=${TIMINGS_SECONDS:-$([ $MODE = gpu ] && echo 270 || echo 86400)}
for part in $PARTS; do
  case $part in timings|e2e|gtests) ;; *) echo "device_session: unknown part '$part' in PARTS (timings, e2e, gtests)" >&2; exit 2 ;; esac
done
[ -f "$DEVICE_DIR/caffe-cuda13.tar.xz" ] ||
  { echo "device_session: no $DEVICE_DIR/caffe-cuda13.tar.xz: run bash tools/device_bundle.sh first (and carry .device)" >&2; exit 2; }
mkdir -p "$OUT" || { echo "device_session: cannot make $OUT" >&2; exit 2; }
PARTS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/park3d-session.XXXXXX") || { echo "device_session: cannot make a folder in ${TMPDIR:-/tmp}: set TMPDIR" >&2; exit 2; }
: > "$OUT/summary.md"
RESULTS=() FAILED=0 CHILD="" PART="" T0=0
# collect CODE: the running part's summary appended to OUT/summary.md, the demo's weights and test set moved there
# (--cpu alone: 410 MB do not come back from a card), its other files packed into OUT/PART.tgz
collect() {
  local code=$1 dir=$PARTS_DIR/$PART how=""
  case $code in 124) how=": stopped at the deadline" ;; 143) how=": the session was stopped" ;; esac
  { echo "## $PART ($SCRIPT, exit $code after $((SECONDS - T0)) s$how)"
    echo; cat "$dir/summary.md" 2>/dev/null || echo "(no summary.md)"; echo; } >> "$OUT/summary.md"
  for f in final.caffemodel walking_test_lmdb.tgz; do [ ! -f "$dir/$f" ] || mv "$dir/$f" "$OUT/"; done
  rm -f "$dir/summary.md"
  [ -z "$(ls -A "$dir")" ] || tar czf "$OUT/$PART.tgz" -C "$dir" . || echo "device_session: cannot write $OUT/$PART.tgz" >> "$OUT/summary.md"
  RESULTS+=("$PART exit $code"); [ "$code" = 0 ] || FAILED=1
}
finish() {
  echo "device_session: $((SECONDS - START)) s in all; $(printf '%s, ' "${RESULTS[@]}" | sed 's/, $//')" | tee -a "$OUT/summary.md"
}
# after a TERM to the session (during a part or between two): the last line, and no further part
end_if_stopped() { [ $STOPPED = 0 ] || { RESULTS+=("stopped by a signal"); finish; exit 143; }; }
# a TERM to the session (a caller's deadline) goes to the running part too (its exit trap packs its logs); the
# session waits for it, collects what it wrote, and ends
STOPPED=0
trap 'STOPPED=1; [ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null' TERM INT
trap 'rm -rf "$PARTS_DIR"' EXIT
# run_part PART SCRIPT CAP [VAR=VALUE...]: SCRIPT in a folder of its own, stopped (TERM: its logs packed) at the
# deadline or after CAP seconds, whichever comes first
run_part() {
  local left=$((END - SECONDS)) code
  PART=$1 SCRIPT=$2 T0=$SECONDS
  [ "$3" -ge "$left" ] || left=$3
  shift 3
  if [ $left -lt 30 ]; then
    RESULTS+=("$PART not started"); FAILED=1
    echo "## $PART: not started, $left s left of SESSION_SECONDS" >> "$OUT/summary.md"
    return
  fi
  mkdir -p "$PARTS_DIR/$PART"
  env "$@" OUT="$PARTS_DIR/$PART" PARK3D_DEVICE_DIR="$DEVICE_DIR" timeout -k 20 "$left" bash "$ROOT/tools/$SCRIPT" "${FLAG[@]}" &
  CHILD=$!
  # wait returns early when a signal comes in; the part is waited for until it has ended
  while :; do wait "$CHILD"; code=$?; kill -0 "$CHILD" 2>/dev/null || break; done
  CHILD=""
  collect $code
  end_if_stopped
  [ $code != 2 ] || { RESULTS+=("stopped: the bundle is missing or damaged (exit 2)"); FAILED=2; return 2; }
}
for part in $PARTS; do
  end_if_stopped
  case $part in
    # the timings at most TIMINGS_SECONDS, so that a hung `caffe time` (each stops at 120 s) leaves the rest their time
    timings) run_part timings device_check.sh "$TIMINGS_CAP" GTESTS=0 ;;
    e2e) run_part e2e device_e2e.sh "$((END - SECONDS))" ;;
    # the gtests stop starting cases 20 s before the deadline, so that the part ends itself and names what it left out
    gtests) run_part gtests device_check.sh "$((END - SECONDS))" TIMINGS=0 KIT_SECONDS=$((END - SECONDS - 20)) ;;
  esac || break
done
finish
exit $FAILED
