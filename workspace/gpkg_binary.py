"""GeoPackage binary geometry (GPB): encode shapely geometries for plain ``sqlite3`` writes.

A GeoPackage stores each geometry as a small header (magic ``GP``, version, flags, srs_id, optional envelope)
followed by ISO WKB (GeoPackage 1.4, clause 2.1.3). Writing rows through ``sqlite3`` instead of GDAL lets a
whole layer replacement live inside one SQLite transaction; this module produces exactly the bytes GDAL
would, and supplies the ``ST_*`` SQL functions that GDAL's R-tree triggers call, so the spatial index stays
correct when rows change outside GDAL.
"""

from __future__ import annotations

import math
import sqlite3
import struct

import numpy as np
import shapely

#: Flags byte: bit 0 = little-endian, bits 1-3 = envelope kind (1 = minx,maxx,miny,maxy), bit 4 = empty.
_LITTLE_ENDIAN = 0b0000_0001
_ENVELOPE_XY = 0b0000_0010
_EMPTY = 0b0001_0000
_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}


def encode_geometry(geometry, *, srs_id: int) -> bytes | None:
    """Encode one shapely geometry as GeoPackage binary; ``None`` stays SQL NULL.

    Points carry no envelope (their bounds are the point itself, as GDAL writes them); every other type
    carries the xy envelope so readers can skip parsing the WKB for a bounding-box test.
    """
    if geometry is None:
        return None
    wkb = shapely.to_wkb(geometry, byte_order=1, flavor="iso", output_dimension=2)
    if geometry.is_empty:
        # An empty geometry's envelope is NaN in every direction; the empty flag tells readers so.
        header = struct.pack("<2sBBi", b"GP", 0, _LITTLE_ENDIAN | _EMPTY, srs_id)
        return header + wkb
    if geometry.geom_type == "Point":
        return struct.pack("<2sBBi", b"GP", 0, _LITTLE_ENDIAN, srs_id) + wkb
    minx, miny, maxx, maxy = geometry.bounds
    header = struct.pack("<2sBBi4d", b"GP", 0, _LITTLE_ENDIAN | _ENVELOPE_XY, srs_id, minx, maxx, miny, maxy)
    return header + wkb


def encode_geometries(geometries, *, srs_id: int) -> list[bytes | None]:
    """Encode an array of shapely geometries (``None`` allowed) as GeoPackage binary blobs."""
    return [encode_geometry(g, srs_id=srs_id) for g in geometries]


def _split(blob: bytes) -> tuple[int, bool, tuple[float, float, float, float] | None, bytes]:
    """Return ``(flags, little_endian, xy envelope or None, wkb)`` of a GeoPackage binary blob."""
    if len(blob) < 8 or blob[:2] != b"GP":
        raise ValueError("not a GeoPackage binary geometry (missing 'GP' magic)")
    flags = blob[3]
    little = bool(flags & _LITTLE_ENDIAN)
    envelope_kind = (flags >> 1) & 0b111
    if envelope_kind not in _ENVELOPE_DOUBLES:
        raise ValueError(f"invalid GeoPackage envelope indicator {envelope_kind}")
    n_doubles = _ENVELOPE_DOUBLES[envelope_kind]
    end = 8 + 8 * n_doubles
    envelope = None
    if n_doubles:
        values = struct.unpack(("<" if little else ">") + f"{n_doubles}d", blob[8:end])
        envelope = (values[0], values[1], values[2], values[3])
    return flags, little, envelope, bytes(blob[end:])


def decode_geometry(blob: bytes | None):
    """Decode a GeoPackage binary blob back to a shapely geometry (``None`` for SQL NULL)."""
    if blob is None:
        return None
    _, _, _, wkb = _split(blob)
    return shapely.from_wkb(wkb)


def decode_geometries(blobs) -> np.ndarray:
    """Decode many GeoPackage binary blobs at once (``None`` stays ``None``)."""
    wkbs = [None if b is None else _split(b)[3] for b in blobs]
    return shapely.from_wkb(np.asarray(wkbs, dtype=object)) if wkbs else np.empty(0, dtype=object)


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """``(minx, maxx, miny, maxy)`` of a blob, from its header when present, else from the WKB."""
    if blob is None:
        return None
    flags, _, envelope, wkb = _split(blob)
    if flags & _EMPTY:
        return None
    if envelope is not None:
        return envelope
    geometry = shapely.from_wkb(wkb)
    if geometry.is_empty:
        return None
    minx, miny, maxx, maxy = geometry.bounds
    return (minx, maxx, miny, maxy)


def _st_is_empty(blob):
    if blob is None:
        return None
    flags, _, _, wkb = _split(blob)
    if flags & _EMPTY:
        return 1
    return int(shapely.from_wkb(wkb).is_empty)


def _coordinate(index: int):
    def function(blob):
        envelope = _envelope(blob)
        if envelope is None:
            return None
        value = envelope[index]
        return None if math.isnan(value) else value

    return function


def register_sql_functions(connection: sqlite3.Connection) -> None:
    """Register ``ST_IsEmpty`` and ``ST_MinX/MaxX/MinY/MaxY`` on a ``sqlite3`` connection.

    GDAL's R-tree triggers on every layer call these; without them an INSERT into a layer fails with
    "no such function: ST_IsEmpty". They are deterministic, so SQLite may use them in indexes and triggers.
    """
    connection.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
    for name, index in (("ST_MinX", 0), ("ST_MaxX", 1), ("ST_MinY", 2), ("ST_MaxY", 3)):
        connection.create_function(name, 1, _coordinate(index), deterministic=True)


def total_bounds(geometries) -> tuple[float, float, float, float] | None:
    """``(minx, miny, maxx, maxy)`` over non-empty geometries, or ``None`` when there are none."""
    array = np.asarray(geometries, dtype=object)
    present = array[[g is not None and not g.is_empty for g in array]] if len(array) else array
    if len(present) == 0:
        return None
    bounds = shapely.bounds(present)
    return (float(np.nanmin(bounds[:, 0])), float(np.nanmin(bounds[:, 1])),
            float(np.nanmax(bounds[:, 2])), float(np.nanmax(bounds[:, 3])))
