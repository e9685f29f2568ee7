"""Output files: written whole or not at all (a temporary name beside the target, then a rename), and the free
disk checked before a long job writes them."""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import shutil
import socket
import sys
from pathlib import Path

from .errors import DiskFullError

# errno values of a write that found no room: a full disk, a full quota, a file-size limit (ulimit -f)
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@functools.lru_cache(maxsize=1)
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


_SWEPT: set = set()  # (pid, folder) pairs whose dead writers' temporary files this process has removed


def temporary_name(path: Path, suffix: str = "") -> Path:
    """Where `path` is written before it is renamed into place: beside it, one per host and process, so two
    programs writing the same output each write a whole file (the last rename wins) instead of one file
    together. The first temporary name a process asks for in a folder removes the temporary files that killed
    writers of this host left there (once per folder: a clip's thousands of per-frame files list it once)."""
    path = Path(path)
    _sweep(path.parent)
    return path.with_name(f"{path.stem if suffix else path.name}.{_host()}.{os.getpid()}.tmp{suffix}")


def _sweep(folder: Path) -> None:
    key = (os.getpid(), str(folder.resolve()))
    if key in _SWEPT or not folder.is_dir():
        return
    _SWEPT.add(key)
    left_by = re.compile(r"\." + re.escape(_host()) + r"\.(\d+)\.tmp(\.\w+)?$")
    for left in folder.iterdir():
        m = left_by.search(left.name)
        if m and not _alive(int(m.group(1))):
            left.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def no_room(path: Path, error: OSError) -> DiskFullError:
    """The one line for an output that did not fit: nothing of it is left (the caller removed its temporary file)."""
    return DiskFullError(f"{path}: the disk is full ({error.strerror or error}); {Path(path).name} was not written and "
                         f"nothing of it is left; free space on {Path(path).parent} or write it to another disk")


@contextlib.contextmanager
def atomic_output(path: Path, suffix: str = ""):
    """The temporary path (temporary_name) to write `path` under, its folder made: renamed into place when the
    block ends, removed when it raises, the target left as it was; a full disk is a DiskFullError naming `path`.
    suffix: the extension the temporary name must end in, for writers that go by it (".png", ".cdf")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in NO_ROOM:
            raise no_room(path, e) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """`text` into `path` (its folder made if missing); a reader never sees a half-written file."""
    return write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """`data` into `path` through atomic_output: whole or not at all, a full disk one DiskFullError naming it."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


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


@contextlib.contextmanager
def native_stderr_silenced():
    """The C libraries' own messages kept off stderr while a file of unknown health is opened (FFmpeg's `moov atom
    not found` for an empty .mp4, libjpeg's warnings for a damaged .jpg): the tool says what is wrong in its own
    one line. Only around such reads: everything else a library prints still shows."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
