"""Output files: written whole or not at all (a temporary name beside the target, then a rename), and the free
disk checked before a long job writes them."""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
from pathlib import Path

from .cli import DiskFullError

# errno values of a write that found no room: a full disk, a full quota, a file-size limit (ulimit -f)
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def temporary_name(path: Path, suffix: str = "") -> Path:
    """Where `path` is written before it is renamed into place: beside it, one per host and process, so two
    programs writing the same output each write a whole file (the last rename wins) instead of one file
    together. The temporary files that killed writers of this host left for `path` are removed first."""
    path = Path(path)
    base = path.stem if suffix else path.name
    pattern = re.compile(re.escape(f"{base}.{_host()}.") + r"(\d+)" + re.escape(f".tmp{suffix}") + "$")
    if path.parent.is_dir():
        for left in path.parent.iterdir():
            m = pattern.match(left.name)
            if m and not _alive(int(m.group(1))):
                left.unlink(missing_ok=True)
    return path.with_name(f"{base}.{_host()}.{os.getpid()}.tmp{suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def no_room(path: Path, error: OSError) -> DiskFullError:
    """The one line for an output that did not fit: nothing of it is left (the caller removed its temporary file)."""
    return DiskFullError(f"{path}: the disk is full ({error.strerror or error}); {Path(path).name} was not written and "
                         f"nothing of it is left; free space on {Path(path).parent} or write it to another disk")


def write_text_atomic(path: Path, text: str) -> Path:
    """`text` into `path` (its folder made if missing); a reader never sees a half-written file."""
    return write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """`data` into `path` through a temporary name beside it (temporary_name); on a failed write the temporary
    file is removed and the target left as it was, and a full disk is a DiskFullError naming `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in NO_ROOM:
            raise no_room(path, e) from e
        raise
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
