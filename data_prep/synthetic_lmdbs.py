"""The synthetic stand-in for Human3.6M that the demo, the ablation and the learning curve train on: a
Human3.6M-layout dataset made by the project's generator, and its LMDBs, each made once."""
from __future__ import annotations

from pathlib import Path

from .lmdb_build import build_lmdbs
from .records import DEFAULT_ENCODING, read_meta
from .skeleton import action_slug
from .synthetic import GeneratorConfig, generate


def prepare_synthetic(out: Path, actions, frames: int, frame_step: int, seed: int = 0, progress: bool = True,
                      workers: int = 2, encoding: str = DEFAULT_ENCODING) -> Path:
    """Generate (once) the layout under out/h36m and build (once per encoding) out/lmdb; returns the LMDB folder."""
    data, lmdb = Path(out) / "h36m", Path(out) / "lmdb"
    done = data / "DONE"
    wanted = f"{sorted(actions)} frames={frames} seed={seed}"
    if not done.is_file() or done.read_text() != wanted:
        generate(
            GeneratorConfig(data, actions=tuple(actions), frames=frames, seed=seed), workers=workers, progress=progress
        )
        done.write_text(wanted)
    def built(action):  # in this encoding (LMDBs from before encodings existed are raw)
        test = lmdb / f"{action_slug(action)}_test.lmdb"
        try:
            return read_meta(test).get("encoding", "raw") == encoding
        except (FileNotFoundError, ValueError):  # not built, or an older format: build again
            return False

    missing = [a for a in actions if not built(a)]
    if missing:
        build_lmdbs(data, lmdb, actions=tuple(missing), step=frame_step, workers=workers, progress=progress,
                    encoding=encoding)
    return lmdb
