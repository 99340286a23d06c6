"""The files of an area-cache entry: pickled parts whose arrays are read back without a copy,
and frames kept as coordinate arrays until first read.

A part is one pickle (protocol 5) whose large buffers (numpy arrays, pandas' columns) are
written after the pickle's own bytes, each at a multiple of :data:`ALIGN` bytes, instead of
inside it. Reading a part is one read of the file into memory, a CRC-32 of it, and an unpickle
that hands those buffers to the arrays as they lie in memory: no array is copied again. The
checksum catches a truncated or damaged file; what guards against a crafted one is the folder's
owner and mode (:func:`check_private`), as pickles run code when loaded.

A part can also be *deferred*: its owner, mode and size checked, and read only when something
asks for it (:class:`DeferredFrame`), if it is the same file then; when it is not (its entry
was removed meanwhile, the least recently used, by another run), the frame is made another way.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ALIGN = 64
"""Each out-of-band buffer starts at a multiple of this many bytes from the start of the file."""

_PAD = bytes(ALIGN)


class CacheError(Exception):
    """A cache entry or the cache folder cannot be used; never reaches the user's run."""


class Untrusted(CacheError):
    """The entry is not the current user's alone: it is left as it is and not unpickled."""


class Gone(CacheError):
    """A part's file is no longer the one its entry was read with (the entry was removed since,
    the least recently used, by another run): nothing wrong with the cache."""


# --------------------------------------------------------------------------- parts
def write_part(path: Path, value: Any) -> dict[str, Any]:
    """Write ``value`` to a new file ``path`` (mode 0600) as a part; its description for the
    manifest: ``file``, ``bytes``, ``crc32``, ``stream`` (the pickle's own bytes) and
    ``buffers`` (offset and length of each out-of-band buffer)."""
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    layout: list[list[int]] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(stream)
        crc, offset = zlib.crc32(stream), len(stream)
        for buffer in buffers:
            pad = _PAD[: -offset % ALIGN]
            raw = buffer.raw()
            fh.write(pad)
            fh.write(raw)
            crc = zlib.crc32(raw, zlib.crc32(pad, crc))
            layout.append([offset + len(pad), raw.nbytes])
            offset += len(pad) + raw.nbytes
    size = {"bytes": offset, "crc32": crc, "stream": len(stream)}
    return {"file": path.name, **size, "buffers": layout}


def open_part(path: Path, info: dict[str, Any]) -> io.FileIO:
    """Open a part after checking its owner, mode (:func:`check_private`) and size."""
    fh = open(path, "rb", buffering=0)  # (returned open)
    try:
        _check_part(os.fstat(fh.fileno()), path, info)
    except BaseException:
        fh.close()
        raise
    return fh


def _check_part(st: os.stat_result, path: Path, info: dict[str, Any]) -> None:
    """A part's owner and mode (:func:`check_private`), and its size against its manifest."""
    check_private(st, path.name)
    if st.st_size != info["bytes"]:
        raise CacheError(f"{path.name} holds {st.st_size} bytes, not {info['bytes']}")


def read_part(fh: io.FileIO, info: dict[str, Any]) -> Any:
    """The value in an open part, checked against its size and CRC-32; its arrays lie in the
    one buffer the file was read into (writable; at the offsets written, from a start that
    malloc aligns to 16 bytes)."""
    size = int(info["bytes"])
    data = bytearray(size)
    view = memoryview(data)
    fh.seek(0)
    got = 0
    while got < size:
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    if got != size or fh.read(1):
        raise CacheError(f"{info['file']} is not {size} bytes long (truncated or changed)")
    if zlib.crc32(view) != info["crc32"]:
        raise CacheError(f"{info['file']} does not match its checksum (damaged or changed)")
    buffers = [view[start : start + n] for start, n in info["buffers"]]
    return pickle.loads(view[: info["stream"]], buffers=buffers)


def check_private(st: os.stat_result, name: str) -> None:
    """Refuse a file the current user does not own, or that group or others may write."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # pragma: no cover - Windows: no owner bits to check
        return
    if st.st_uid != getuid():
        raise Untrusted(f"{name} belongs to user {st.st_uid}, not to you")
    if st.st_mode & 0o022:
        raise Untrusted(f"{name} is writable by group or others (mode {st.st_mode:o})")


# --------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class PackedFrame:
    """A GeoDataFrame with its geometry as coordinate arrays (``shapely.to_ragged_array``):
    read back several times faster than the WKB a GeoDataFrame pickles to."""

    frame: Any
    geometry: str
    columns: list[Any]
    crs: str | None
    ragged: tuple[Any, ...]

    def build(self) -> Any:
        """The GeoDataFrame."""
        import geopandas as gpd
        import shapely

        kind, coords, offsets = self.ragged
        geoms = shapely.from_ragged_array(shapely.GeometryType(kind), coords, offsets)
        frame = gpd.GeoDataFrame(self.frame, geometry=geoms, crs=self.crs)
        if self.geometry != "geometry":
            frame = frame.rename_geometry(self.geometry)
        return _owned(frame[self.columns])


def pack(value: Any) -> Any:
    """A GeoDataFrame of one geometry type throughout as a :class:`PackedFrame`; anything else
    as it is."""
    import geopandas as gpd
    import numpy as np
    import shapely

    if not (isinstance(value, gpd.GeoDataFrame) and len(value) and value.geometry.notna().all()):
        return value
    geoms = value.geometry.to_numpy()
    if len(np.unique(shapely.get_type_id(geoms))) != 1:  # (it would make them multi)
        return value
    try:
        kind, coords, offsets = shapely.to_ragged_array(geoms)
    except (ValueError, NotImplementedError):
        return value
    return PackedFrame(
        frame=value.drop(columns=value.geometry.name).copy(),
        geometry=value.geometry.name,
        columns=list(value.columns),
        crs=value.crs.to_wkt() if value.crs is not None else None,
        ragged=(int(kind), coords, offsets),
    )


class DeferredFrame:
    """A GeoDataFrame held as arrays (a :class:`PackedFrame`, or what makes one when needed: a
    deferred part, or the arrays of a first read) and made on first use (:meth:`make`): a run
    that never reads it makes no lines.

    Parameters
    ----------
    packed
        The arrays at hand (or a frame that could not be packed); or ``None`` with ``rows`` and
        ``load``.
    rows
        The frame's length (known without reading it).
    load
        Makes the stored value when it is first needed (reads a part, or packs a first read's
        arrays): a :class:`PackedFrame` or a GeoDataFrame; a part that cannot be read raises
        :class:`CacheError`.
    fallback
        Makes the frame another way when ``load`` fails (the area reads its file again).
    """

    def __init__(
        self,
        packed: Any = None,
        *,
        rows: int | None = None,
        load: Callable[[], Any] | None = None,
        fallback: Callable[[], Any] | None = None,
    ) -> None:
        if packed is None and (rows is None or load is None):
            raise TypeError("DeferredFrame needs its arrays, or its rows and a loader")
        self._value: Any = packed
        self._rows = int(rows) if rows is not None else _rows_of(packed)
        self._load, self._fallback = load, fallback

    def __len__(self) -> int:
        return self._rows

    @property
    def packed(self) -> Any:
        """The stored value (a :class:`PackedFrame`, or a frame that could not be packed)."""
        if self._value is None:
            assert self._load is not None
            self._value, self._load = self._load(), None
        return self._value

    def make(self) -> Any:
        """The GeoDataFrame."""
        try:
            value = self.packed
        except CacheError as err:
            if self._fallback is None:
                raise
            level = logging.INFO if isinstance(err, Gone) else logging.WARNING
            log.log(level, "area cache: %s; the frame is made from the file instead", err)
            self._value, self._load = self._fallback(), None
            value = self._value
        return value.build() if isinstance(value, PackedFrame) else _owned(value)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its arrays (its part read now, when it was not read yet)."""
        try:
            value = self.packed
        except CacheError:
            if self._fallback is None:
                raise
            self.make()
            value = self._value
        return (DeferredFrame, (value,))


def _owned(frame: Any) -> Any:
    """A copy of ``frame`` that holds no view of the buffer its part was read into (which would
    keep the whole part in memory, its coordinates and pickle included)."""
    out = frame.copy()
    out.index = out.index.copy(deep=True)
    return out


def _rows_of(value: Any) -> int:
    return len(value.frame) if isinstance(value, PackedFrame) else len(value)


def deferred_part(
    path: Path,
    info: dict[str, Any],
    *,
    on_broken: Callable[[], object],
    fallback: Callable[[], Any] | None = None,
) -> DeferredFrame:
    """A :class:`DeferredFrame` of the part at ``path``, checked now (owner, mode, size) and
    read when first made if it is still the same file of the same size (else :class:`Gone`);
    when it then fails to read, ``on_broken()`` is called and :class:`CacheError` raised.
    No file stays open in between: an area may be kept for long, and many areas at once."""
    seen = os.lstat(path)
    _check_part(seen, path, info)

    def load() -> Any:
        try:
            fh = open(path, "rb", buffering=0)  # (closed below)
        except FileNotFoundError as err:
            raise Gone(f"{path} is gone") from err
        except OSError as err:
            raise CacheError(f"{path} cannot be read ({err})") from err
        with fh:
            now = os.fstat(fh.fileno())
            if not os.path.samestat(now, seen) or now.st_size != seen.st_size:
                raise Gone(f"{path} is not the file read with its entry")
            check_private(now, path.name)
            try:
                return read_part(fh, info)
            except Exception as err:
                on_broken()
                raise CacheError(f"{path.parent}: {err}") from err

    return DeferredFrame(rows=int(info["rows"]), load=load, fallback=fallback)
