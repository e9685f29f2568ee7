"""What the project raises for a user's mistakes and for faults of the user's machine, and how an OSError of the
machine reads as one line. The tools turn these into one line on stderr and exit code 2 (data_prep/cli.py); the
library raises them wherever the mistake is found."""
from __future__ import annotations

import errno
import os


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
