"""An on-disk cache of parsed areas, keyed by the file's content and the options that shape it.

Reading a city's OSM file is the slow step of a run (pyrosm or osmnx, then projecting and
clipping); a second run on the same file and options reads the :class:`~servicecircle.area.Area`
back from here instead. :func:`servicecircle.area.load_area` uses it when handed ``cache=``;
the command line does by default (``--cache-dir DIR``, ``--no-cache``).

Where
    ``--cache-dir`` / ``AreaCache(folder)``; else ``$SERVICECIRCLE_CACHE_DIR``; else the user
    cache folder (``platformdirs.user_cache_dir("servicecircle")``: ``~/.cache/servicecircle`` on
    Linux, ``~/Library/Caches/servicecircle`` on macOS). Deleting the folder is always safe.

Key
    sha256 of a text naming, one per line: :data:`CACHE_FORMAT`; servicecircle's version and a
    hash of the source of the modules that shape an area (``area.py``, ``osm.py``), so a code
    change drops old entries; the reader's tag filters; the versions of the libraries that read
    and hold the frames (pyrosm or osmnx, geopandas, pandas, shapely, pyproj, numpy); the reader
    and the file's suffixes; the sha256 of the file's bytes; and the boundary as WKT in EPSG:4326
    rounded to 1e-9° (about 0.1 mm), or ``None``. The file's path and the area's name are not in
    the key: the same bytes elsewhere hit, and the name and source come from the call.

The content hash is memoised (``hashes/``) by (device, inode, size, mtime_ns, ctime_ns) of the
resolved path; any difference re-hashes. ``touch`` changes mtime and ctime: the file is hashed
again, and the same bytes still hit. New bytes written in place with the old size and mtime
restored (``os.utime``) still change ctime, which no user call can set back. A memo is only
written for a file unchanged for :data:`RACY_S` seconds before hashing began (git's "racy clean"
rule), so a filesystem with coarse timestamps cannot hide a write that follows a hash within the
same tick; and a file that changes while it is hashed or read is neither memoised nor stored.

Entries (``areas/<key>/``): ``area.pkl`` (the area's CRS, boundary and report, pickled), one
file per frame stored apart (``nodes.pkl``, ``edges.pkl``, ``buildings.pkl``, ...: read only
when something uses that frame; the network stored beside the area needs none) and
``manifest.json`` (format, key, options, and each file's fields, size, CRC-32 and layout;
:mod:`~servicecircle.cache_files`). Pickle is fast and keeps every dtype, and its arrays are read
back without a copy, but loading a pickle runs code, so the trust boundary is the folder: it is
created for the user alone (mode 0700, entries 0600), and an entry not owned by the current user
or writable by group or others is not loaded (POSIX); the checksum only catches a truncated or
damaged file. An entry is written into a staging folder under ``tmp/`` and moved into place
with one ``os.replace``: readers see a whole entry or none, and when two runs store the same key
the second finds it there and drops its own. An entry whose manifest, size or checksum does not
match is a miss and is removed (a frame stored apart that fails when it is read is made from the
OSM file instead). At most :data:`DEFAULT_MAX_ENTRIES` entries and :data:`DEFAULT_MAX_BYTES`
bytes are kept; the least recently used go first.

The cache never fails a run: every cache error is logged as a warning and the file is read as if
there were no cache. One case is left to the user: a frame stored apart is needed after its entry
was removed (by another run, the least recently used) and the OSM file is gone or has changed
since; that is an :class:`~servicecircle.InputError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .cache_files import (
    CacheError,
    DeferredFrame,
    PackedFrame,
    Untrusted,
    check_private,
    deferred_part,
    open_part,
    pack,
    read_part,
    write_part,
)

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

CACHE_FORMAT = 3
"""Bump when what an entry holds, or how an area is built, changes in a way the key misses."""

ENV_VAR = "SERVICECIRCLE_CACHE_DIR"
"""Environment variable that overrides the default cache folder."""

DEFAULT_MAX_ENTRIES = 20
DEFAULT_MAX_BYTES = 4 * 2**30
RACY_S = 2.0
"""A file modified less than this long before it was hashed gets no hash memo."""

STALE_TMP_S = 3600.0
"""Staging folders older than this are left over from a crashed run and are removed."""

MAX_HASH_MEMOS = 1000
_PAYLOAD = "area.pkl"
_MANIFEST = "manifest.json"
_BOUNDARY_DECIMALS = 9
_LIBRARIES = {
    "pbf": ("pyrosm",),
    "xml": ("osmnx",),
    "graphml": ("osmnx",),
}
_COMMON_LIBRARIES = ("geopandas", "pandas", "shapely", "pyproj", "numpy")
# the code that makes an area, and the network stored beside it (a change there misses)
_AREA_MODULES = (
    "area.py", "osm.py", "pbf_network.py", "pbf_blocks.py", "_arrays.py", "cache_files.py",
    "network.py", "edge_arrays.py", "snapping.py",
)  # fmt: skip


def default_folder() -> Path:
    """The cache folder when none is given: ``$SERVICECIRCLE_CACHE_DIR``, else the user cache
    folder from platformdirs, else ``~/.cache/servicecircle``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        return Path.home() / ".cache" / "servicecircle"
    return Path(platformdirs.user_cache_dir("servicecircle", appauthor=False))


@dataclass(frozen=True)
class CacheKey:
    """What an entry is stored under, and the file's state when it was hashed.

    Attributes
    ----------
    digest
        sha256 (hex) of the options text: the entry's folder name.
    options
        The parts of the key, for ``manifest.json`` (a long boundary is shortened to its hash).
    path
        The file that was hashed.
    signature
        ``(device, inode, size, mtime_ns, ctime_ns)`` of the file when it was hashed.
    """

    digest: str
    options: dict[str, str]
    path: Path
    signature: tuple[int, ...]


class AreaCache:
    """Parsed areas on disk, keyed by the file's content hash and the options that shape them.

    Parameters
    ----------
    folder
        Where entries live; default :func:`default_folder`. Nothing is created until an area is
        stored.
    max_entries, max_bytes
        Keep at most this many entries and bytes; the least recently used go first.

    Examples
    --------
    >>> import tempfile
    >>> from servicecircle.area import load_area
    >>> cache = AreaCache(Path(tempfile.mkdtemp()))
    >>> first = load_area("demo", cache=cache)   # reads the file, stores the area
    >>> second = load_area("demo", cache=cache)  # reads the stored area
    >>> len(second.edges) == len(first.edges)
    True
    """

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else default_folder()
        self.max_entries = max(1, int(max_entries))
        self.max_bytes = int(max_bytes)

    def __repr__(self) -> str:
        return f"AreaCache({str(self.folder)!r})"

    # ------------------------------------------------------------------ keys
    def key(self, path: Path, *, reader: str, boundary: gpd.GeoSeries | None) -> CacheKey | None:
        """The key of ``path`` read by ``reader`` (``"pbf"``, ``"xml"``, ``"graphml"``) and
        clipped to ``boundary``; ``None`` (with a warning) when it cannot be made."""
        try:
            digest, signature = self._content_hash(path)
            boundary_text = boundary_wkt(boundary)
            options = {
                "format": str(CACHE_FORMAT),
                "servicecircle": f"{__version__} code {code_fingerprint()}",
                "filters": filters_fingerprint(),
                "libraries": library_versions(reader),
                "reader": f"{reader} {''.join(path.suffixes[-2:]).lower()}",
                "content": f"sha256:{digest}",
                "boundary": boundary_text,
            }
        except Exception as err:
            _warn(f"cannot make a key for {path}", err, "reading the file without the cache")
            return None
        text = "\n".join(f"{k}={v}" for k, v in options.items())
        if len(boundary_text) > 500:
            options["boundary"] = "sha256:" + hashlib.sha256(boundary_text.encode()).hexdigest()
        return CacheKey(hashlib.sha256(text.encode()).hexdigest(), options, path, signature)

    def _content_hash(self, path: Path) -> tuple[str, tuple[int, ...]]:
        """sha256 of the file's bytes, from the memo when the file's signature still matches."""
        resolved = path.resolve()
        before = os.stat(resolved)
        signature = _signature(before)
        memo_file = self.folder / "hashes" / (_short_hash(str(resolved)) + ".json")
        with contextlib.suppress(Exception):
            check_private(os.lstat(memo_file), memo_file.name)
            memo = json.loads(memo_file.read_text(encoding="utf-8"))
            if memo["path"] == str(resolved) and tuple(memo["signature"]) == signature:
                return str(memo["sha256"]), signature
        started_ns = time.time_ns()
        with open(resolved, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        if _signature(os.stat(resolved)) != signature:
            raise CacheError(f"{path} changed while it was hashed")
        last_change_ns = max(before.st_mtime_ns, before.st_ctime_ns)
        if started_ns - last_change_ns > RACY_S * 1e9:
            memo = {"path": str(resolved), "signature": list(signature), "sha256": digest}
            try:
                self._ensure_folder("hashes")
                _write_atomic(memo_file, json.dumps(memo).encode())
            except OSError as err:
                log.debug("area cache: hash memo not written (%s)", err)
        return digest, signature

    # ------------------------------------------------------------------ read
    def load(
        self,
        key: CacheKey,
        *,
        fields: Iterable[str],
        deferred: bool = False,
        fallback: Callable[[str], Any] | None = None,
    ) -> dict[str, Any] | None:
        """The stored fields under ``key``, or ``None`` on a miss (a broken entry is removed).

        With ``deferred``, GeoDataFrames come back as :class:`DeferredFrame`: their arrays
        (checked like the rest), made into frames when first asked for; a field stored
        ``apart`` is read only then. Should that read fail, the entry is removed and
        ``fallback(field)`` makes the frame (without one, :class:`CacheError` is raised then).
        """
        entry = self.folder / "areas" / key.digest
        if not entry.is_dir():
            log.debug("area cache: miss %s in %s", key.digest[:12], self.folder)
            return None
        try:
            payload = self._read_entry(entry, key, set(fields), deferred, fallback)
        except Untrusted as err:
            _warn(f"entry {entry} is not loaded", err, "reading the file instead")
            return None
        except Exception as err:
            what = "is removed" if self._remove(entry) else "cannot be removed (read-only?)"
            _warn(f"entry {entry} is broken and {what}", err, "reading the file instead")
            return None
        with contextlib.suppress(OSError):
            os.utime(entry / _MANIFEST)  # least recently used goes first
        log.info("area cache: hit %s in %s", key.digest[:12], self.folder)
        return payload

    def _read_entry(
        self,
        entry: Path,
        key: CacheKey,
        fields: set[str],
        deferred: bool,
        fallback: Callable[[str], Any] | None,
    ) -> dict[str, Any]:
        """Check an entry's owner, manifest, sizes and checksums, then unpickle its parts (a
        part stored apart, when ``deferred``: open it, read it when first made)."""
        for path in (entry, entry / _MANIFEST):
            check_private(os.lstat(path), path.name)
        manifest = json.loads((entry / _MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != CACHE_FORMAT or manifest.get("key") != key.digest:
            raise CacheError("its manifest names another format or key")
        parts = manifest["parts"]
        if sorted(f for part in parts for f in part["fields"]) != sorted(fields):
            raise CacheError("its manifest does not list the expected fields")

        out: dict[str, Any] = {}
        for part in parts:
            part_file = Path(part["file"]).name
            path = entry / part_file
            if part.get("apart") and deferred:
                (name,) = part["fields"]
                again = partial(fallback, name) if fallback is not None else None
                gone = partial(self._remove, entry)  # (when the part turns out damaged)
                out[name] = deferred_part(path, part, on_broken=gone, fallback=again)
                continue
            with open_part(path, part) as fh:
                value = read_part(fh, part)
            if part.get("apart"):
                value = {part["fields"][0]: value}
            if not isinstance(value, dict) or set(value) != set(part["fields"]):
                raise CacheError(f"{part_file} does not hold the fields its manifest lists")
            out.update({f: _unpacked(v, deferred) for f, v in value.items()})
        return out

    # ------------------------------------------------------------------ write
    def store(self, key: CacheKey, payload: dict[str, Any], *, apart: Iterable[str] = ()) -> None:
        """Store ``payload`` (picklable fields) under ``key``, the frames named in ``apart``
        each in a file of its own (read only when used); logs and returns on any error."""
        try:
            if file_signature(key.path) != key.signature:
                log.info("area cache: %s changed while it was read; not stored", key.path)
                return
            self._store(key, payload, set(apart))
        except Exception as err:
            self._cannot_store(err)
            return
        with contextlib.suppress(Exception):
            self.prune(keep=key.digest)

    def _store(self, key: CacheKey, payload: dict[str, Any], apart: set[str]) -> None:
        areas = self._ensure_folder("areas")
        entry = areas / key.digest
        if entry.exists():
            return
        staging = self._ensure_folder("tmp") / f"{key.digest[:16]}-{os.getpid()}-{uuid.uuid4().hex}"
        staging.mkdir(mode=0o700)
        try:
            main = {f: pack(v) for f, v in payload.items() if f not in apart}
            parts = [{**write_part(staging / _PAYLOAD, main), "fields": sorted(main)}]
            for name in sorted(apart & set(payload)):
                value = pack(payload[name])
                rows = len(value.frame if isinstance(value, PackedFrame) else value)
                info = write_part(staging / f"{name}.pkl", value)
                parts.append({**info, "fields": [name], "apart": True, "rows": rows})
            manifest = {
                "format": CACHE_FORMAT,
                "key": key.digest,
                "options": key.options,
                "parts": parts,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "source": str(key.path),
            }
            _write_atomic(staging / _MANIFEST, json.dumps(manifest, indent=1).encode())
            try:
                os.replace(staging, entry)
            except OSError:
                if not entry.is_dir():  # another run stored the same key first: keep theirs
                    raise
                return
            size = sum(int(part["bytes"]) for part in parts)
            log.info(
                "area cache: stored %s (%.1f MB) in %s", key.digest[:12], size / 2**20, self.folder
            )
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _cannot_store(self, err: BaseException) -> None:
        """One line, once per folder in a process, for a folder that cannot take entries."""
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            why = "it is a file, not a folder"
        elif not folder.exists():  # (making it failed)
            why = f"it cannot be made ({getattr(err, 'strerror', None) or err})"
        elif isinstance(err, PermissionError) or getattr(err, "errno", None) == errno.EROFS:
            why = "it cannot be written (read-only, or another user's)"
        else:
            _warn(f"cannot store the area in {folder}", err, "the run goes on uncached")
            return
        if str(folder) not in _TOLD:
            _TOLD.add(str(folder))
            log.warning(
                "area cache: --cache-dir %s cannot be used: %s; the run goes on without the "
                "cache (give another folder, or --no-cache)", folder, why
            )  # fmt: skip

    # ------------------------------------------------------------------ housekeeping
    def entries(self) -> list[Path]:
        """The entry folders, most recently used first."""
        areas = self.folder / "areas"
        if not areas.is_dir():
            return []
        found = []
        for entry in areas.iterdir():
            try:
                found.append((os.stat(entry / _MANIFEST).st_mtime_ns, entry))
            except OSError:
                found.append((0, entry))
        return [e for _, e in sorted(found, key=lambda t: t[0], reverse=True)]

    def prune(self, *, keep: str | None = None) -> None:
        """Remove the least recently used entries beyond the limits, leftover staging folders,
        and old hash memos. ``keep`` names an entry that stays whatever its size."""
        total, kept = 0, 0
        for entry in self.entries():
            size = sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
            if entry.name == keep or (kept < self.max_entries and total + size <= self.max_bytes):
                total, kept = total + size, kept + 1
            else:
                log.info("area cache: removing %s (least recently used)", entry.name[:12])
                self._remove(entry)
        now = time.time()
        tmp = self.folder / "tmp"
        for stale in tmp.iterdir() if tmp.is_dir() else ():
            if now - stale.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(stale, ignore_errors=True)
        hashes = self.folder / "hashes"
        memos = sorted(hashes.iterdir(), key=lambda p: p.stat().st_mtime) if hashes.is_dir() else []
        for memo in memos[: max(0, len(memos) - MAX_HASH_MEMOS)]:
            memo.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove every entry and hash memo (the folder stays)."""
        for sub in ("areas", "tmp", "hashes"):
            shutil.rmtree(self.folder / sub, ignore_errors=True)

    def _remove(self, entry: Path) -> bool:
        """Move the entry out of ``areas/`` at once, then delete it; whether it is gone."""
        try:
            gone = self._ensure_folder("tmp") / f"gone-{uuid.uuid4().hex}"
            os.replace(entry, gone)
        except OSError:
            gone = entry
        shutil.rmtree(gone, ignore_errors=True)
        return not entry.exists()

    def _ensure_folder(self, sub: str) -> Path:
        if not self.folder.is_dir():
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                (self.folder / "README.txt").write_text(_README, encoding="utf-8")
        path = self.folder / sub
        path.mkdir(mode=0o700, exist_ok=True)
        return path


_README = """\
servicecircle's cache of parsed OSM areas (see servicecircle.cache). Safe to delete.
Entries are pickles: keep this folder writable by you alone.
"""


# --------------------------------------------------------------------------- key parts
def boundary_wkt(boundary: gpd.GeoSeries | None) -> str:
    """The boundary's WKT in EPSG:4326, rounded to 1e-9 degrees; ``"None"`` without one."""
    if boundary is None:
        return "None"
    import shapely

    geom = shapely.union_all(boundary.to_crs(4326).to_numpy())
    return str(shapely.to_wkt(geom, rounding_precision=_BOUNDARY_DECIMALS, trim=True))


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 (first 16 hex digits) of the source of the modules that build an area."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in _AREA_MODULES:
        try:
            h.update((here / name).read_bytes())
        except OSError:  # pragma: no cover - installed without sources
            h.update(f"{name}:unreadable".encode())
    return h.hexdigest()[:16]


def filters_fingerprint() -> str:
    """The reader's tag filters (walkable highways, foot values, feature tags) as one hash."""
    from .osm import FEATURE_TAGS, FOOT_ALLOWED, NON_WALKABLE_HIGHWAY

    text = repr(
        (
            sorted(NON_WALKABLE_HIGHWAY),
            sorted(FOOT_ALLOWED),
            sorted((k, repr(v)) for k, v in FEATURE_TAGS.items()),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def library_versions(reader: str) -> str:
    """``name version`` of the libraries that read this kind of file and hold the frames."""
    names = (*_LIBRARIES.get(reader, ()), *_COMMON_LIBRARIES)
    return ", ".join(f"{name} {_version(name)}" for name in names)


@lru_cache(maxsize=32)
def _version(name: str) -> str:
    """A distribution's version without importing it (its ``*.dist-info`` folder name), the
    same whether or not the module was imported already."""
    prefix = name.replace("-", "_").lower() + "-"
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for entry in names:
            if entry.lower().startswith(prefix) and entry.endswith(".dist-info"):
                return entry[len(prefix) : -len(".dist-info")]
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _unpacked(value: Any, deferred: bool) -> Any:
    if isinstance(value, PackedFrame):
        return DeferredFrame(value) if deferred else value.build()
    return value


def file_signature(path: Path) -> tuple[int, ...]:
    """``(device, inode, size, mtime_ns, ctime_ns)`` of the file ``path`` resolves to: what a
    :class:`CacheKey` remembers of the file it hashed."""
    return _signature(os.stat(Path(path).resolve()))


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a unique name next to ``path`` (mode 0600), then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_TOLD: set[str] = set()  # folders already said to be unusable


def _warn(what: str, err: BaseException, then: str) -> None:
    log.warning("area cache: %s (%s: %s); %s", what, type(err).__name__, err, then)


# --------------------------------------------------------------------------- derived entries
_REMEMBERED: weakref.WeakKeyDictionary[Any, tuple[AreaCache, CacheKey]] = (
    weakref.WeakKeyDictionary()
)


def remember(area: Any, cache: AreaCache, key: CacheKey) -> None:
    """Note which cache entry an area came from, so what is made of it (its walk network) can
    be cached beside it."""
    with contextlib.suppress(TypeError):
        _REMEMBERED[area] = (cache, key)


def derived(area: Any, what: str) -> tuple[AreaCache, CacheKey] | None:
    """The cache and key for something made of ``area`` (``what`` says what and with which
    options, e.g. the network's fragment rule); ``None`` when the area was not cached."""
    got = _REMEMBERED.get(area)
    if got is None:
        return None
    cache, key = got
    digest = hashlib.sha256(f"{key.digest}|{what}".encode()).hexdigest()
    return cache, CacheKey(digest, {**key.options, "derived": what}, key.path, key.signature)
