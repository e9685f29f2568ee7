"""The GPU faults a user meets, run as the user meets them, each reported in one line (issue: the user's commands on
a GPU machine): a GPU id the machine does not have (`tools/evaluate.py --gpu N` where there are N GPUs), and the
card out of memory because another process holds it (`caffe train -gpu 0` through layers.training while a holder,
PyTorch on the machine's Python, keeps all but HEADROOM_MIB of the card). Each line gives the exit status and the
last line the user reads on stderr. tools/device_e2e.sh runs it last on the card, and writes its own batch-128
trainings with paper_batch_solver. It records and fails nothing:
a line that is not one line of advice is the finding.

  python -m bench.device_faults --lmdb-root L --weights W --work DIR [--iters N] [--gpus N] [--cpu]

--cpu: the first fault only (there is no card to hold), where it meets the machine's missing driver or card."""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADROOM_MIB = 1536  # what the holder leaves free: the CUDA context fits, the full model's training at 128 does not

# The holder: PyTorch keeps all but HEADROOM_MIB of GPU 0 (plain cudaMalloc, through its allocator) and says how much.
HOLDER = f"""
import time, torch
free, total = torch.cuda.mem_get_info()
held = torch.empty(max(free - {HEADROOM_MIB} * 2**20, 0), dtype=torch.uint8, device="cuda")
print(f"holding {{held.numel() / 2**30:.1f}} GiB of {{total / 2**30:.1f}}", flush=True)
time.sleep(300)
"""

# The user's training through the project's driver, in a process of its own; a UserError is its one line.
TRAIN = """
import sys
from pathlib import Path
from data_prep.errors import UserError
from layers.training import train_to_completion
try:
    train_to_completion(Path(sys.argv[1]), Path(sys.argv[2]), gpu=0, progress=False)
except UserError as e:
    sys.exit(f"error: {e}")
"""


def seen(result: subprocess.CompletedProcess) -> str:
    """What the user reads: the exit status, how many lines stderr had, and its last line."""
    err = result.stderr.strip().splitlines()
    return f"exit {result.returncode}, {len(err)} line{'s' * (len(err) != 1)} on stderr: {err[-1] if err else '-'}"


def gpu_count() -> int:
    """The GPUs nvidia-smi lists (0 where there is none, or no nvidia-smi)."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in listed.splitlines())


def missing_gpu(lmdb_root: Path, weights: Path, work: Path, gpus: int) -> str:
    """tools/evaluate.py --gpu N on a machine with N GPUs (ids 0 .. N-1)."""
    result = subprocess.run([sys.executable, str(REPO / "tools" / "evaluate.py"), "--lmdb-root", str(lmdb_root),
                             "--weights", f"Walking={weights}", "--out", str(work / "evaluate"), "--quiet",
                             "--gpu", str(gpus)], capture_output=True, text=True, timeout=300)
    return f"tools/evaluate.py --gpu {gpus} ({gpus} GPUs here): {seen(result)}"


def paper_batch_solver(work: Path, lmdb_root: Path, iters: int, display: int = 1, workers="auto") -> Path:
    """The full model on Walking at the paper's batch 128 for `iters` iterations (a test and a snapshot at the end),
    its files under `work`: the held-card training here, and tools/device_e2e.sh's batch-128 trainings."""
    from prototxt.generate import Schedule, write_action_experiment

    schedule = Schedule(batch_size=128, max_iter=iters, snapshot=iters, test_interval=iters, display=display,
                        workers=workers)
    (work / "snapshots").mkdir(parents=True, exist_ok=True)
    return write_action_experiment(work / "prototxt", "Walking", "both", lmdb_root, schedule, work / "snapshots")[0]


def held_card(lmdb_root: Path, work: Path, iters: int, holder=(sys.executable, "-c", HOLDER)) -> str:
    """`caffe train -gpu 0` on the full model at batch 128 (layers.training, as tools/train_all.py runs it) while
    `holder` keeps the card; the holder is ended however the training ends, and after 120 s in any case."""
    proc = subprocess.Popen(list(holder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(120, proc.kill)  # a holder that never gets the card ends, and so does the wait for it
    timer.daemon = True
    timer.start()
    try:
        ready = proc.stdout.readline().strip()
        if not ready:
            proc.kill()
            return f"the card held by another process: could not hold it ({proc.stderr.read().strip()[-300:]})"
        solver = paper_batch_solver(work, lmdb_root, min(iters, 20))  # should the card not run out, a short run
        result = subprocess.run([sys.executable, "-c", TRAIN, str(solver), str(work / "train.log")],
                                capture_output=True, text=True, timeout=300)
        return f"caffe train -gpu 0 (layers.training), another process {ready}: {seen(result)}"
    finally:
        proc.kill()
        proc.wait()
        timer.cancel()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lmdb-root", type=Path, required=True, help="folder with walking_test.lmdb (and _train)")
    ap.add_argument("--weights", type=Path, required=True, help="the full model's trained .caffemodel")
    ap.add_argument("--work", type=Path, required=True, help="a folder for the runs' files")
    ap.add_argument("--iters", type=int, default=20, help="the held-card training's iterations (at most 20)")
    ap.add_argument("--gpus", type=int, help="the GPUs here (default: as nvidia-smi lists them)")
    ap.add_argument("--cpu", action="store_true", help="the first fault only")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print(missing_gpu(args.lmdb_root, args.weights, args.work, gpu_count() if args.gpus is None else args.gpus),
          flush=True)
    if not args.cpu:
        print(held_card(args.lmdb_root, args.work, args.iters), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
