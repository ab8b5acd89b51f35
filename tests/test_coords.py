"""WGS84 / GCJ-02 / BD-09 conversions: published reference pairs, precise inverses, the out-of-China rule."""

from __future__ import annotations

import numpy as np
import pytest

from geo.coords import convert, from_wgs84, is_out_of_china, to_wgs84

# (WGS84 lon, lat) -> (GCJ-02 lon, lat), the reference pairs published with eviltransform's test suite.
GCJ_PAIRS = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


@pytest.mark.parametrize("wgs, gcj", GCJ_PAIRS)
def test_forward_gcj_matches_published_pairs(wgs, gcj):
    lon, lat = from_wgs84(*wgs, target="gcj02")
    assert lon == pytest.approx(gcj[0], abs=1e-9)
    assert lat == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize("wgs, gcj", GCJ_PAIRS)
def test_precise_inverse_recovers_published_wgs(wgs, gcj):
    lon, lat = to_wgs84(*gcj, source="gcj02")
    assert abs(lon - wgs[0]) < 1e-9 and abs(lat - wgs[1]) < 1e-9


def test_inverse_far_better_than_one_step():
    # The crude inverse (subtract the offset evaluated at the GCJ point) is off by up to a few metres.
    from geo.coords import _gcj_offset

    gcj_lon, gcj_lat = 121.531541859215, 31.17530398364597
    d_lon, d_lat = _gcj_offset(np.array(gcj_lon), np.array(gcj_lat))
    crude = _metres(gcj_lon - d_lon, gcj_lat - d_lat, 121.5272106, 31.1774276)
    precise = _metres(*to_wgs84(gcj_lon, gcj_lat, source="gcj02"), 121.5272106, 31.1774276)
    assert crude > 0.1
    assert precise < 1e-4


def test_gcj_to_bd_and_back_match_gcoord_reference():
    # gcoord's unit tests: GCJ02 (123, 45) -> BD09 (123.00636499, 45.00636899), -> WGS84 (122.99395597, 44.99804071)
    bd = convert(123.0, 45.0, source="gcj02", target="bd09")
    assert bd == pytest.approx((123.00636499, 45.00636899), abs=1e-7)
    wgs = to_wgs84(123.0, 45.0, source="gcj02")
    assert wgs == pytest.approx((122.99395597, 44.99804071), abs=1e-6)


def test_round_trips_within_a_millimetre_for_random_points_in_china():
    rng = np.random.default_rng(42)
    lon = rng.uniform(73.5, 134.8, 20_000)
    lat = rng.uniform(18.2, 53.5, 20_000)
    for system in ("gcj02", "bd09"):
        s_lon, s_lat = from_wgs84(lon, lat, target=system)
        shift = _metres(lon, lat, s_lon, s_lat)
        assert shift.min() > 1.0, "the transform must actually move points inside China"
        back_lon, back_lat = to_wgs84(s_lon, s_lat, source=system)
        error = _metres(lon, lat, back_lon, back_lat)
        assert error.max() < 1e-3, (system, error.max())
        assert np.abs(back_lon - lon).max() < 1e-9 and np.abs(back_lat - lat).max() < 1e-9


def test_bd09_sits_on_top_of_gcj02():
    lon, lat = np.array([121.15, 121.40]), np.array([30.04, 29.90])  # Yuyao
    g = from_wgs84(lon, lat, target="gcj02")
    b = from_wgs84(lon, lat, target="bd09")
    assert np.allclose(convert(*g, source="gcj02", target="bd09"), b, atol=1e-12)
    # Baidu's extra offset is ~0.0065° east and ~0.006° north: several hundred metres more than GCJ.
    assert 400 < _metres(g[0], g[1], b[0], b[1]).min() < 1200


def test_out_of_china_passes_through_unless_forced():
    andorra = (1.5218, 42.5063)
    assert is_out_of_china(*andorra)
    assert from_wgs84(*andorra, target="gcj02") == andorra
    assert to_wgs84(*andorra, source="gcj02") == andorra
    forced = from_wgs84(*andorra, target="gcj02", force=True)
    assert _metres(*andorra, *forced) > 100
    back = to_wgs84(*forced, source="gcj02", force=True)
    assert _metres(*andorra, *back) < 1e-3


def test_vectorised_shapes_and_nan_are_preserved():
    lon = np.array([[121.0, np.nan], [116.4, 1.5]])
    lat = np.array([[30.0, 30.0], [39.9, 42.5]])
    out_lon, out_lat = to_wgs84(lon, lat, source="bd09")
    assert out_lon.shape == (2, 2) and np.isnan(out_lon[0, 1]) and np.isfinite(out_lon[1, 0])


def test_unknown_system_is_rejected():
    with pytest.raises(ValueError, match="coordinate system"):
        to_wgs84(121.0, 30.0, source="cgcs2000")
