"""Chinese map coordinate systems: WGS84, GCJ-02 (AMap/Gaode, Tencent) and BD-09 (Baidu).

GCJ-02 is WGS84 plus a deliberate, smooth, position-dependent offset of a few hundred metres; BD-09 adds a
second small rotation/offset on top of GCJ-02. The forward formulas below are the widely published ones
(``eviltransform``, ``prcoords``, ``gcoord``). The PyPI packages that implement them are unmaintained and
either ship only the crude one-step inverse (errors of 1–2 m) or are not vectorised, so this module does it
itself: forward transforms in closed form, and inverses by fixed-point iteration on the forward transform
until the residual is below ``tolerance_deg`` (default 1e-10°, about 0.01 mm).

Outside China neither AMap nor Baidu applies the GCJ offset; the usual bounding-box rule
(:func:`is_out_of_china`) passes such points through unchanged. ``force=True`` applies the offset anyway,
which the demo region (Andorra) needs to draw overlays on an AMap basemap in the same frame as its tiles.
"""

from __future__ import annotations

import numpy as np

#: Coordinate systems understood by :func:`to_wgs84` and :func:`from_wgs84`.
COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

# Krasovsky 1940 ellipsoid, which the GCJ-02 formula uses.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
_BD_X_PI = np.pi * 3000.0 / 180.0

# The standard "out of China" bounding box (a rectangle, as AMap's own SDK uses).
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)

_MAX_ITERATIONS = 30


def is_out_of_china(lon: np.ndarray | float, lat: np.ndarray | float) -> np.ndarray | bool:
    """Whether points lie outside the rectangle where the GCJ-02 offset applies.

    Parameters
    ----------
    lon, lat : array-like or float
        Degrees.

    Returns
    -------
    numpy.ndarray of bool, or bool for scalar input
    """
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    out = (lon_a < _CHINA_LON[0]) | (lon_a > _CHINA_LON[1]) | (lat_a < _CHINA_LAT[0]) | (lat_a > _CHINA_LAT[1])
    return bool(out) if out.ndim == 0 else out


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 offset (dlon, dlat) in degrees at WGS84 position (lon, lat), always applied."""
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _wgs_to_gcj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_bd(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_approx(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Baidu's published one-step inverse: a good starting point for the iteration, ~1e-6° off.
    x, y = lon - 0.0065, lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(forward, lon: np.ndarray, lat: np.ndarray, start: tuple[np.ndarray, np.ndarray],
            tolerance_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(x) = target`` by fixed-point iteration ``x <- x - (forward(x) - target)``.

    Both offsets vary by far less than a degree per degree (their Jacobian is the identity to ~1e-3), so the
    iteration is a contraction and gains about three digits per step; a handful of steps reach 1e-10°.
    """
    x_lon, x_lat = start
    for _ in range(_MAX_ITERATIONS):
        f_lon, f_lat = forward(x_lon, x_lat)
        r_lon, r_lat = f_lon - lon, f_lat - lat
        x_lon, x_lat = x_lon - r_lon, x_lat - r_lat
        residual = np.maximum(np.abs(r_lon), np.abs(r_lat))
        # NaN inputs stay NaN and must not keep the loop running.
        if not np.any(residual > tolerance_deg):
            break
    return x_lon, x_lat


def _check_system(name: str, argument: str) -> str:
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in COORD_SYSTEMS:
        raise ValueError(f"{argument}={name!r} is not a known coordinate system; use one of {COORD_SYSTEMS}")
    return key


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray, bool]:
    lon_a = np.asarray(lon, dtype=float)
    lat_a = np.asarray(lat, dtype=float)
    if lon_a.shape != lat_a.shape:
        raise ValueError(f"lon and lat have different shapes {lon_a.shape} and {lat_a.shape}")
    return lon_a, lat_a, lon_a.ndim == 0


def _result(lon: np.ndarray, lat: np.ndarray, scalar: bool):
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def from_wgs84(lon, lat, *, target: str, force: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 coordinates into ``target``.

    Parameters
    ----------
    lon, lat : array-like or float
        WGS84 degrees; any matching shapes. NaN stays NaN.
    target : str
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.
    force : bool
        Apply the GCJ-02 offset also outside China (by default such points keep their WGS84 position in
        GCJ-02, as AMap does; BD-09's own small offset applies everywhere).

    Returns
    -------
    tuple of numpy.ndarray (or of float for scalar input)
        ``(lon, lat)`` in ``target``.
    """
    target = _check_system(target, "target")
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    if target == "wgs84":
        return _result(lon_a.copy(), lat_a.copy(), scalar)
    g_lon, g_lat = _wgs_to_gcj(lon_a, lat_a)
    if not force:
        outside = is_out_of_china(lon_a, lat_a)
        g_lon, g_lat = np.where(outside, lon_a, g_lon), np.where(outside, lat_a, g_lat)
    if target == "bd09":
        g_lon, g_lat = _gcj_to_bd(g_lon, g_lat)
    return _result(g_lon, g_lat, scalar)


def to_wgs84(lon, lat, *, source: str, force: bool = False,
             tolerance_deg: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates from ``source`` into WGS84 with a precise (iterative) inverse.

    Parameters
    ----------
    lon, lat : array-like or float
        Degrees in ``source``; any matching shapes. NaN stays NaN.
    source : str
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.
    force : bool
        Remove the GCJ-02 offset also outside China (the inverse of ``from_wgs84(..., force=True)``).
    tolerance_deg : float
        Stop when re-applying the forward transform reproduces the input to within this many degrees.

    Returns
    -------
    tuple of numpy.ndarray (or of float for scalar input)
        ``(lon, lat)`` in WGS84.
    """
    source = _check_system(source, "source")
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    if source == "wgs84":
        return _result(lon_a.copy(), lat_a.copy(), scalar)
    if source == "bd09":
        g_lon, g_lat = _invert(_gcj_to_bd, lon_a, lat_a, _bd_to_gcj_approx(lon_a, lat_a), tolerance_deg)
    else:
        g_lon, g_lat = lon_a, lat_a
    # One-step inverse as the start (already within ~1 m), then iterate on the full forward offset.
    d_lon, d_lat = _gcj_offset(g_lon, g_lat)
    w_lon, w_lat = _invert(_wgs_to_gcj, g_lon, g_lat, (g_lon - d_lon, g_lat - d_lat), tolerance_deg)
    if not force:
        # The rule is decided on the position the caller has, i.e. the shifted one, as AMap's SDK does.
        outside = is_out_of_china(g_lon, g_lat)
        w_lon, w_lat = np.where(outside, g_lon, w_lon), np.where(outside, g_lat, w_lat)
    return _result(w_lon, w_lat, scalar)


def convert(lon, lat, *, source: str, target: str, force: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Convert between any two of :data:`COORD_SYSTEMS` through WGS84.

    Parameters
    ----------
    lon, lat : array-like or float
    source, target : str
    force : bool
        See :func:`from_wgs84`.

    Returns
    -------
    tuple of numpy.ndarray (or of float for scalar input)
    """
    w_lon, w_lat = to_wgs84(lon, lat, source=source, force=force)
    return from_wgs84(w_lon, w_lat, target=target, force=force)
