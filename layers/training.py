"""Running the `caffe` tool from the drivers (demo, train_all, ablation): log to a file, progress bar,
resume from the latest snapshot, snapshot pruning and the disk check; and reading its logs back (Fig. 4).
Also the set-up's Caffe build itself: where it is, and running its own gtests."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from data_prep.cli import REPO, DiskFullError, UserError

_ITER = re.compile(r"Iteration (\d+)")


def caffe_binary() -> str:
    local = REPO / ".venv" / "bin" / "caffe"
    return str(local) if local.is_file() else "caffe"


def caffe_env(**overrides) -> dict:
    """The environment for the caffe tool: the venv first on PATH (its embedded Python then finds the
    venv, see tools/setup.sh), plus `overrides`."""
    env = {**os.environ, **overrides}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def caffe_home(venv: Path = REPO / ".venv") -> Path:
    """The Caffe build folder tools/setup.sh linked into `venv` (it writes <venv>/.caffe-home)."""
    marker = Path(venv) / ".caffe-home"
    if not marker.is_file():
        raise UserError(f"{marker}: missing; run tools/setup.sh first")
    return Path(marker.read_text().strip())


@dataclasses.dataclass
class GtestRun:
    returncode: int
    log: str
    ran: int  # tests that ran
    passed: int
    failed: list  # names of the failed tests


def run_caffe_gtests(home: Path, gtest_filter: str, device: int | None = None, env: dict | None = None,
                     timeout: float = 3000) -> GtestRun:
    """Caffe's own gtests the set-up built into `home` (bin/caffe_layer_tests: the nets' layer types, the SGD
    solver, the math functions), run from share/caffe_gtest_root, where the solver tests find their data.
    device: the GPU for the GPU cases (the test binary takes it as its first plain argument)."""
    home = Path(home)
    command = [str(home / "bin" / "caffe_layer_tests"), f"--gtest_filter={gtest_filter}"]
    out = subprocess.run(command + ([] if device is None else [str(device)]), capture_output=True, text=True,
                         timeout=timeout, cwd=home / "share" / "caffe_gtest_root",
                         env={**(os.environ if env is None else env), "LD_LIBRARY_PATH": str(home / "lib")})
    log = out.stdout + out.stderr
    ran = re.search(r"\[==========\] (\d+) tests? from (\d+) test cases? ran", log)
    passed = re.search(r"\[  PASSED  \] (\d+) tests?", log)
    failed = sorted(set(re.findall(r"^\[  FAILED  \] ([A-Za-z]\S*)", log, re.M)))  # not the "N tests, listed below"
    return GtestRun(out.returncode, log, int(ran.group(1)) if ran else 0, int(passed.group(1)) if passed else 0, failed)


def snapshots(prefix, suffix: str) -> list:
    """A snapshot prefix's files with `suffix` (.solverstate, .caffemodel), oldest iteration first."""
    p = Path(prefix)
    return sorted(p.parent.glob(f"{p.name}_iter_*{suffix}"), key=lambda f: int(f.stem.rsplit("_", 1)[1]))


def latest_snapshot(prefix: str) -> Path | None:
    """The .solverstate with the highest iteration for a snapshot prefix, or None."""
    states = snapshots(prefix, ".solverstate")
    return states[-1] if states else None


KEEP_WEIGHTS = 2  # snapshots' .caffemodel files kept during a run: the latest (resume) and the one before


def prune_snapshots(prefix: Path, keep_weights: int = KEEP_WEIGHTS) -> None:
    """Keep only the latest .solverstate and the latest `keep_weights` .caffemodel files of a snapshot prefix."""
    for f in snapshots(prefix, ".solverstate")[:-1] + snapshots(prefix, ".caffemodel")[:-max(1, keep_weights)]:
        f.unlink()


def snapshot_disk_need(solver_param, cwd: Path, keep_weights: int = KEEP_WEIGHTS) -> int | None:
    """Bytes a run's snapshots take at their peak with pruning ((keep + 1) weights and two solver states while
    one is written), for the paper's nets (known from the train net's name); None for other nets."""
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    from prototxt.generate import PARAMETERS, variant_of_net_name

    net_path = Path(solver_param.train_net or solver_param.net)
    net_path = net_path if net_path.is_absolute() else Path(cwd) / net_path
    try:
        name = text_format.Parse(net_path.read_text(), caffe_pb2.NetParameter(), allow_unknown_field=True).name
    except (OSError, text_format.ParseError):
        return None
    variant = variant_of_net_name(name)
    return None if variant is None else (keep_weights + 3) * 4 * PARAMETERS[variant]


def run_caffe_train(solver: Path, log_path: Path, max_iter: int, resume: Path | None = None, cwd: Path = REPO,
                    progress: bool | str = True, desc: str = "caffe train", extra_args=(), on_snapshot=None) -> None:
    """`caffe train -solver solver [-snapshot resume]`, its log appended to log_path; raises with the
    log's tail if Caffe fails. progress: True for a bar on a terminal, "lines" for plain lines with the
    rate and ETA (logs, CI; data_prep.progress), False for nothing. on_snapshot() runs after each snapshot."""
    from data_prep.progress import Progress

    cmd = [caffe_binary(), "train", "-solver", str(solver), *extra_args]
    if resume is not None:
        cmd += ["-snapshot", str(resume)]
    env = caffe_env(GLOG_logtostderr="1", GLOG_minloglevel="0")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = int(resume.stem.rsplit("_", 1)[1]) if resume else 0
    shown = Progress(max_iter, desc, unit="iterations", mode=progress, initial=start)
    tail = []
    with open(log_path, "a") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.PIPE, text=True)
        for line in proc.stderr:
            log.write(line)
            log.flush()  # so that the log can be followed while Caffe runs
            tail = (tail + [line])[-40:]
            if "solver.cpp" in line:
                m = _ITER.search(line)
                if m:
                    shown.update_to(int(m.group(1)))
            elif on_snapshot is not None and "Snapshotting solver state" in line:
                on_snapshot()  # the state is written when the line is logged
        code = proc.wait()
    shown.close()
    if code != 0:
        raise RuntimeError(f"caffe train failed (exit {code}); full log: {log_path}\n" + "".join(tail))


def read_solver(path: Path):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    s = caffe_pb2.SolverParameter()
    try:
        text_format.Merge(Path(path).read_text(), s)
    except (OSError, text_format.ParseError) as e:
        raise UserError(f"{path}: not a readable solver prototxt ({e})") from e
    return s


def train_to_completion(solver: Path, log: Path, cwd: Path = REPO, gpu: int | None = None, progress: bool | str = True,
                        desc: str = "caffe train", prune: bool = False) -> Path:
    """Train until the solver's final snapshot exists: skipped when it does, resumed from the latest
    snapshot when an earlier run was interrupted. Snapshots are pruned while it runs (the latest solver state,
    the latest KEEP_WEIGHTS weights: 820 MB per snapshot of the full model); with `prune`, only the final
    weights and state are kept at the end. The disk is checked first. Returns the final .caffemodel."""
    if gpu is not None:
        from .device import require_gpu

        require_gpu(gpu)  # before the caffe tool aborts on it
    s = read_solver(solver)
    prefix = Path(s.snapshot_prefix) if Path(s.snapshot_prefix).is_absolute() else Path(cwd) / s.snapshot_prefix
    final = Path(f"{prefix}_iter_{s.max_iter}.caffemodel")
    if final.is_file():
        return final
    prefix.parent.mkdir(parents=True, exist_ok=True)
    need = snapshot_disk_need(s, cwd)
    free = shutil.disk_usage(prefix.parent).free
    if need is not None and need > free:
        raise DiskFullError(f"{prefix.parent}: this run's snapshots need about {need / 1e9:.1f} GB and the disk has "
                            f"{free / 1e9:.1f} GB free; free space or point snapshot_prefix in {solver} elsewhere")
    resume = latest_snapshot(str(prefix))
    run_caffe_train(solver, log, s.max_iter, resume=resume, cwd=cwd, progress=progress, desc=desc,
                    extra_args=["-gpu", str(gpu)] if gpu is not None else [],
                    on_snapshot=lambda: prune_snapshots(prefix))
    if not final.is_file():
        raise RuntimeError(f"caffe train ended without {final}; is `snapshot` a divisor of max_iter? log: {log}")
    if prune:
        for f in prefix.parent.glob(prefix.name + "_iter_*"):
            if f.suffix in (".caffemodel", ".solverstate") and f.stem != final.stem:
                f.unlink()
    return final


_TRAIN_ITER = re.compile(r"solver\.cpp:\d+\] Iteration (\d+) \(.*\), loss = ")
_TEST_ITER = re.compile(r"solver\.cpp:\d+\] Iteration (\d+), Testing net")
_OUTPUT = re.compile(r"(Train|Test) net output #\d+: (\S+) = ([-0-9.e+naif]+)")


def parse_caffe_log(text: str) -> dict:
    """{'train': {name: [(iter, value)]}, 'test': {name: [(iter, value)]}} from a `caffe train` log."""
    out = {"train": {}, "test": {}}
    it = {"train": None, "test": None}
    for line in text.splitlines():
        m = _TRAIN_ITER.search(line)
        if m:
            it["train"] = int(m.group(1))
            continue
        m = _TEST_ITER.search(line)
        if m:
            it["test"] = int(m.group(1))
            continue
        m = _OUTPUT.search(line)
        if m:
            phase = m.group(1).lower()
            if it[phase] is not None:
                out[phase].setdefault(m.group(2), []).append((it[phase], float(m.group(3))))
    return out


def loss_3d_curve(parsed: dict, phase: str) -> tuple[np.ndarray, np.ndarray]:
    """Iterations and the sum of the 3D losses (over roots) at each logged point."""
    series = [v for k, v in parsed[phase].items() if k.startswith("loss_3d")]
    if not series:
        return np.zeros(0), np.zeros(0)
    iters = np.array([i for i, _ in series[0]])
    n = min(len(s) for s in series)
    return iters[:n], np.sum([[v for _, v in s[:n]] for s in series], axis=0)


def fig4_curves(logs: dict) -> dict:
    """label -> {"train": (iterations, 3D loss), "test": (...)} from `caffe train` logs (label -> log path)."""
    curves = {}
    for label, path in logs.items():
        parsed = parse_caffe_log(Path(path).read_text())
        curves[label] = {phase: loss_3d_curve(parsed, phase) for phase in ("train", "test")}
    return curves
