"""Command-line entry points of tools/: a user's mistake (a wrong path, a missing or damaged file, a bad
value) is one line on stderr naming the file and what to do, and exit code 2 — never a traceback.
PARK3D_TRACEBACK=1 shows the traceback instead (for debugging the project itself)."""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]  # the checkout: where the tools' relative defaults resolve


class UserError(Exception):
    """A mistake in what the user passed or pointed at; its message says what is wrong and what to pass."""


class Interrupted(Exception):
    """The user asked a long run to stop (Ctrl-C, SIGTERM) and it stopped cleanly; the message says how to go on."""


class DiskFullError(UserError):
    """The disk an output goes to is full, or will be: names the path, the space needed and what to do."""


# The line a Caffe Python layer prints for such an error before Caffe stops (layers.pose_layers.ReportingLayer);
# the training driver shows it as the run's one line.
LAYER_ERROR = "Python layer error: "

# What the project's own code raises, with a message naming the file, for bad input (data_prep, layers).
USER_ERRORS = (UserError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError)


# OSErrors that the user's machine causes, not the project (a read-only or full mount, a quota, permissions, a
# network mount gone), by errno: what to do, after the path and the system's own words.
ENVIRONMENT_ERRORS = {
    errno.EROFS: "that file system is mounted read-only: give the tool a writable folder for what it writes "
                 "(--out, --logs, the solver's snapshot_prefix), or remount it read-write",
    errno.EACCES: "you may not write or read there: choose a folder of your own, or ask for access",
    errno.EPERM: "the operation is not permitted there: choose a folder of your own, or ask for access",
    errno.EDQUOT: "your disk quota is used up there: free space, or write to a folder with quota left",
    errno.ENOSPC: "the disk is full: free space, or write to another disk",
    errno.ENOTCONN: "the mount is not connected: mount it again, or choose a local folder",
    errno.ESTALE: "a network mount went stale: mount it again, or choose a local folder",
    errno.ENODEV: "the device behind that path is gone: mount it again, or choose another folder",
}


def environment_error_line(e: OSError) -> str | None:
    """One line for an OSError of the user's machine (ENVIRONMENT_ERRORS), naming the path; None for others."""
    advice = ENVIRONMENT_ERRORS.get(e.errno)
    if advice is None:
        return None
    path = e.filename if e.filename is not None else "a file"
    return f"{path}: {e.strerror or os.strerror(e.errno)}; {advice}"


def run_tool(main, argv=None) -> int:
    """main(argv), with user errors turned into one line and exit code 2."""
    name = Path(sys.argv[0]).name
    try:
        return main(argv)
    except SystemExit as e:
        if isinstance(e.code, str):  # raise SystemExit("message"): a user error with its message
            print(f"{name}: error: {e.code}", file=sys.stderr)
            return 2
        raise
    except OSError as e:
        line = environment_error_line(e)
        if os.environ.get("PARK3D_TRACEBACK") or (line is None and not isinstance(e, USER_ERRORS)):
            raise
        print(f"{name}: error: {line or e}", file=sys.stderr)
        return 2
    except USER_ERRORS as e:
        if os.environ.get("PARK3D_TRACEBACK"):
            raise
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Interrupted as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 130


def require_lmdbs(lmdb_root, actions, splits=("train", "test")) -> None:
    """UserError unless <lmdb_root>/<action>_<split>.lmdb/meta.json exist for every action and split."""
    from .skeleton import action_slug

    root = Path(lmdb_root)
    if not root.is_dir():
        raise UserError(f"--lmdb-root {root}: no such folder; build the LMDBs with tools/make_lmdb.py --out {root}")
    missing = [f"{action_slug(a)}_{s}.lmdb" for a in actions for s in splits
               if not (root / f"{action_slug(a)}_{s}.lmdb" / "meta.json").is_file()]
    if missing:
        raise UserError(f"--lmdb-root {root}: no complete {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}; "
                        f"build them with tools/make_lmdb.py --out {root} (or pass the folder that holds them)")
