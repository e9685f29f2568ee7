"""Command-line entry points of tools/: a user's mistake (a wrong path, a missing or damaged file, a bad
value) is one line on stderr naming the file and what to do, and exit code 2 — never a traceback.
PARK3D_TRACEBACK=1 shows the traceback instead (for debugging the project itself)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import USER_ERRORS, Interrupted, UserError, environment_error_line
from .skeleton import action_slug

REPO = Path(__file__).resolve().parents[1]  # the checkout: where the tools' relative defaults resolve


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
    root = Path(lmdb_root)
    if not root.is_dir():
        raise UserError(f"--lmdb-root {root}: no such folder; build the LMDBs with tools/make_lmdb.py --out {root}")
    missing = [f"{action_slug(a)}_{s}.lmdb" for a in actions for s in splits
               if not (root / f"{action_slug(a)}_{s}.lmdb" / "meta.json").is_file()]
    if missing:
        raise UserError(
            f"--lmdb-root {root}: no complete {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}; "
            f"build them with tools/make_lmdb.py --out {root} (or pass the folder that holds them)"
        )
