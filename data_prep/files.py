"""Output files: written whole or not at all (a temporary name beside the target, then a rename), and the free
disk checked before a long job writes them."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .cli import DiskFullError


def write_text_atomic(path: Path, text: str) -> Path:
    """`text` into `path` (its folder made if missing); a reader never sees a half-written file."""
    return write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """`data` into `path` through a temporary name beside it; on a failed write (a full disk) the temporary file
    is removed and the target left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def human_bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def require_free_space(folder: Path, need: int, what: str, elsewhere: str) -> None:
    """DiskFullError when the file system of `folder` has less than `need` bytes free; `elsewhere`: how to put the
    output on another disk."""
    free = shutil.disk_usage(folder).free
    if need > free:
        raise DiskFullError(f"{folder}: {what} needs about {human_bytes(need)} and the disk has {human_bytes(free)} "
                            f"free; free space or {elsewhere}")


def sha256_of(path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
