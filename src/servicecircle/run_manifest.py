"""Which files each command's last run wrote into an output folder, so that a new run of the
same command can remove what it no longer writes (the map after ``--no-map``, the cells after a
run without ``--cells``) and nothing else.

The record is a hidden file in the folder, :data:`MANIFEST`: per command, the names of the
files its last successful run wrote and when. A file is removed only when the same command's
last run wrote it, this run did not, no other command's last run wrote it, and it has not been
changed since (a table someone edited, or uses as an input, stays). A folder without the record
(an older version's, or anyone's) loses nothing.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = ".servicecircle-runs.json"
"""The record of each command's last run in an output folder."""

_CHANGED_AFTER_S = 2.0  # (coarse file-system clocks)


def tidy(out: Path, command: str, written: list[str]) -> list[str]:
    """Record ``written`` as ``command``'s last run in ``out`` and remove what that command's
    previous run wrote there and this one did not (see the module docstring); return the names
    removed."""
    runs = _read(out / MANIFEST)
    last = runs.get(command)
    earlier: dict[str, Any] = last if isinstance(last, dict) else {}
    others = {f for c, r in runs.items() if c != command and isinstance(r, dict) for f in _names(r)}
    since = float(earlier.get("written_at", 0.0)) if earlier else 0.0
    removed, changed = [], []
    for name in sorted(set(_names(earlier)) - set(written) - others):
        path = out / name
        try:
            st = path.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if st.st_mtime > since + _CHANGED_AFTER_S:
            changed.append(name)
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(name)
    runs[command] = {"files": sorted(set(written)), "written_at": time.time()}
    _write(out / MANIFEST, runs)
    if removed:
        log.warning(
            "removed from %s what the last %s run wrote there and this one did not: %s",
            out, command, ", ".join(removed),
        )  # fmt: skip
    if changed:
        log.warning(
            "kept in %s what the last %s run wrote there, this one did not, and was changed "
            "since: %s", out, command, ", ".join(changed),
        )  # fmt: skip
    return removed


def _names(run: dict[str, Any]) -> list[str]:
    files = run.get("files")
    if not isinstance(files, list):
        return []
    return [f for f in files if isinstance(f, str) and f and Path(f).name == f and f != ".."]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    runs = data.get("runs") if isinstance(data, dict) else None
    return dict(runs) if isinstance(runs, dict) else {}


def _write(path: Path, runs: dict[str, Any]) -> None:
    from . import __version__

    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        tmp.write_text(
            json.dumps({"servicecircle": __version__, "runs": runs}, indent=1) + "\n",
            encoding="utf-8",
        )
        os.replace(tmp, path)
    except OSError as err:  # (the results are in place; only the record is missing)
        log.warning("%s: cannot record this run's files (%s)", path, err)
        tmp.unlink(missing_ok=True)
