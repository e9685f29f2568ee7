"""bench/device_faults.py, the GPU faults tools/device_e2e.sh shows on a card, run here on this machine's CPU build:
each fault comes back as one line with the exit status and what the user read, whatever happened (the user's tool
said it in one line, the holder could not hold a card, the training did not stop on the card)."""
from __future__ import annotations

import os
import re
import sys

import pytest

from bench.device_faults import held_card, main, missing_gpu


def test_a_gpu_id_the_machine_lacks_is_one_line_the_user_reads(trained, lmdb_root, tmp_path):
    """tools/evaluate.py --gpu 0 with this CPU-only Caffe: exit 2 and one line (the drivers' UserError), recorded as
    such; and the module's own command line prints that line and nothing else."""
    _, weights = trained
    line = missing_gpu(lmdb_root, weights, tmp_path, 0)
    assert re.fullmatch(r"tools/evaluate\.py --gpu 0 \(0 GPUs here\): exit 2, 1 line on stderr: evaluate\.py: "
                        r"error: .*CPU.*", line), line
    assert main(["--lmdb-root", str(lmdb_root), "--weights", str(weights), "--work", str(tmp_path / "cli"), "--gpus",
                 "0", "--cpu"]) == 0


def test_the_held_card_reports_what_the_user_meets_and_ends_its_holder(lmdb_root, tmp_path):
    """The card held by another process, with stand-in holders (there is no card here): a holder that holds reports
    its line and the user's training runs through layers.training with -gpu 0, which this CPU-only Caffe refuses in
    one line (exit 1 from the training process); a holder that cannot hold is one line with its reason. Either
    holder is ended when the function returns."""
    pid_file = tmp_path / "holder.pid"
    holds = (sys.executable, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
             "print('holding 0.0 GiB of 0.0', flush=True)\ntime.sleep(300)\n")
    line = held_card(lmdb_root, tmp_path / "held", 2, holder=holds)
    assert re.fullmatch(r"caffe train -gpu 0 \(layers\.training\), another process holding 0\.0 GiB of 0\.0: exit 1, "
                        r"1 line on stderr: error: .*(CPU|GPU).*", line), line
    with pytest.raises(ProcessLookupError):  # the holder is gone (killed and reaped)
        os.kill(int(pid_file.read_text()), 0)
    # the solver it was given: the full model's, for 2 iterations at the paper's batch 128
    solver = next((tmp_path / "held" / "prototxt").glob("solver_*.prototxt")).read_text()
    assert "max_iter: 2" in solver, solver
    fails = (sys.executable, "-c", "import sys; sys.exit('no CUDA GPUs are available')")
    line = held_card(lmdb_root, tmp_path / "unheld", 2, holder=fails)
    assert line == "the card held by another process: could not hold it (no CUDA GPUs are available)", line
