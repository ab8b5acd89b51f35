"""The folium agency map: offline assets, colours and statuses, popups, layers, basemaps and the GCJ-02 shift."""

from __future__ import annotations

import re

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.network import edges_frame
from geo.region import load_demo_region
from geo.schema import CARE_TYPE_COLORS
from ui import maps
from ui.maps import agency_map, external_asset_links, from_display, popup_html, to_display


@pytest.fixture(scope="module")
def region():
    return load_demo_region()


@pytest.fixture(scope="module")
def roads(region):
    return maps.basemap_roads(edges_frame(region.network, min_class="tertiary"))


def _walk(element):
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


def _circle_markers(fmap):
    return [e for e in _walk(fmap) if isinstance(e, folium.CircleMarker)]


def _agency(lon, lat, **kw):
    row = {"agency_id": "a1", "name": "测试机构", "care_type": "home", "status": "designated", "address": "某路1号",
           "phone": "0574-1234567", "photo": "", "certified_caregivers": 5, "capacity": 20, "clients_served": 12,
           "quality_score": 88.5, "leading": False, "service_modes": "home_visit", "township": "T", "demo": False}
    row.update(kw)
    return gpd.GeoDataFrame([row], geometry=[shapely.Point(lon, lat)], crs="EPSG:4326")


# ----------------------------------------------------------------------------------------------------------------
# Offline
# ----------------------------------------------------------------------------------------------------------------
def test_map_loads_only_local_assets(region, roads):
    fmap = agency_map(region.agencies, townships=region.townships, units=region.units, roads=roads)
    page = fmap.get_root().render()
    assert external_asset_links(fmap) == []
    tags = re.findall(r"<(?:script|link)\b[^>]*>", page)
    assert not [tag for tag in tags if "http" in tag], tags
    assert '<script src="/app/static/leaflet/leaflet.js">' in page
    assert 'href="/app/static/leaflet/leaflet.css"' in page
    # No jQuery call (folium's popups use $(...)), no icon fonts, no awesome-markers.
    assert "$(" not in page
    assert "font-awesome" not in page.lower() and "awesome-markers" not in page.lower()
    # Folium's own class-level defaults are untouched for other maps.
    assert folium.Map.default_js[0][1].startswith("https://")


def test_shipped_leaflet_is_complete_and_licensed():
    static = maps.STATIC_DIR / "leaflet"
    assert "1.9.4" in (static / "leaflet.js").read_text()[:400]
    css = (static / "leaflet.css").read_text()
    for image in re.findall(r"url\((images/[^)]+)\)", css):
        assert (static / image).is_file(), image
    assert "BSD 2-Clause" in (static / "LICENSE").read_text()
    assert (maps.STATIC_DIR / maps.PLACEHOLDER_PHOTO).is_file()


def test_online_basemaps_only_add_tiles(region):
    for basemap in ("osm", "amap"):
        fmap = agency_map(region.agencies, townships=region.townships, basemap=basemap)
        assert external_asset_links(fmap) == []
        tiles = [e for e in _walk(fmap) if isinstance(e, folium.TileLayer)]
        assert len(tiles) == 1 and tiles[0].tiles.startswith("https://")


# ----------------------------------------------------------------------------------------------------------------
# Markers, statuses, legend, popups, layers
# ----------------------------------------------------------------------------------------------------------------
def test_one_marker_per_visible_agency_coloured_by_type(region):
    fmap = agency_map(region.agencies, townships=region.townships)
    markers = _circle_markers(fmap)
    assert len(markers) == len(region.agencies) == 18
    designated = region.agencies[region.agencies["status"] == "designated"]
    for care_type, colour in CARE_TYPE_COLORS.items():
        filled = [m for m in markers if m.options["fillColor"] == colour]
        assert len(filled) == int((designated["care_type"] == care_type).sum())
    # The suspended home-care centre: grey fill, blue dashed outline.
    greyed = [m for m in markers if m.options["fillColor"] == maps.SUSPENDED_FILL]
    assert len(greyed) == 1
    assert greyed[0].options["color"] == CARE_TYPE_COLORS["home"] and greyed[0].options["dashArray"] == "4 3"


def test_terminated_agencies_hidden_by_default(region):
    agencies = region.agencies.copy()
    agencies.loc[agencies.index[:3], "status"] = "terminated"
    assert len(_circle_markers(agency_map(agencies))) == 15
    shown = _circle_markers(agency_map(agencies, show_terminated=True))
    assert len(shown) == 18
    assert sum(m.options["fillColor"] == maps.TERMINATED_FILL for m in shown) == 3


def test_legend_lists_the_three_colours_and_statuses():
    legend = maps.legend_html(lang="zh")
    for care_type, colour in CARE_TYPE_COLORS.items():
        assert f"background:{colour}" in legend
    for text in ("医院护理", "机构护理", "居家护理", "定点", "暂停"):
        assert text in legend
    english = maps.legend_html(lang="en", show_terminated=True)
    assert "Home care" in english and "Terminated" in english


def test_legend_is_part_of_the_rendered_map(region):
    page = agency_map(region.agencies).get_root().render()
    assert "ltci-legend" in page and "L.control" in page and "\\u533b\\u9662\\u62a4\\u7406" in page  # 医院护理


def test_popup_has_every_field_and_demo_note(region):
    row = region.agencies.iloc[0].to_dict()
    html = popup_html(row, lang="zh")
    for text in (row["name"], row["address"], row["phone"], "医院护理", "定点", "服务人数", "持证护理员", "质量评分",
                 str(row["clients_served"]), str(row["certified_caregivers"]), f'{row["quality_score"]:.1f}',
                 "示例数据 / illustrative figures", "/app/static/img/agency_placeholder.svg", "医疗专护病房"):
        assert text in html, text
    row["demo"] = False
    assert "illustrative" not in popup_html(row, lang="en")
    assert "Home visits" in popup_html(row, lang="en")


def test_popup_text_cannot_break_out_of_the_template_literal():
    html = popup_html({"name": "a`b${alert(1)}", "care_type": "home", "status": "designated"}, lang="en")
    assert "`" not in html and "${" not in html


def test_photo_sources(tmp_path):
    assert maps.photo_src("https://example.org/a.jpg") == "https://example.org/a.jpg"
    assert maps.photo_src("") == "/app/static/img/agency_placeholder.svg"
    assert maps.photo_src("no/such/file.jpg", asset_base="/x") == "/x/img/agency_placeholder.svg"
    image = tmp_path / "door.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    assert maps.photo_src(str(image)).startswith("data:image/png;base64,")


def test_layers_units_townships_roads(region, roads):
    fmap = agency_map(region.agencies, townships=region.townships, units=region.units, roads=roads)
    groups = {e.layer_name: e for e in _walk(fmap) if isinstance(e, folium.FeatureGroup)}
    assert set(groups) == {"护理机构", "村/社区", "乡镇边界", "主要道路"}
    units = [e for e in _walk(groups["村/社区"]) if isinstance(e, folium.GeoJson)][0]
    tips = [f["properties"]["tip"] for f in units.data["features"]]
    assert len(tips) == 70 and "Canillo（Canillo）" in tips
    assert any(isinstance(e, folium.LayerControl) for e in _walk(fmap))
    # Roads drawn only on the vector basemap by default.
    assert groups["主要道路"].show is True
    osm = agency_map(region.agencies, roads=roads, basemap="osm")
    assert [e for e in _walk(osm) if isinstance(e, folium.FeatureGroup) and e.layer_name == "主要道路"][0].show is False


def test_basemap_roads_merge_by_class(region, roads):
    edges = edges_frame(region.network, min_class="tertiary")
    assert len(roads) == edges["highway"].str.replace("_link", "").nunique() < len(edges)
    # Two-way roads are two edges; merged, each road is drawn once (simplification trims under 2 %).
    unique_m = gpd.GeoSeries([shapely.union_all(edges.geometry.to_numpy())], crs=4326).to_crs(3857).length.sum()
    assert roads.geometry.to_crs(3857).length.sum() == pytest.approx(unique_m, rel=0.02)
    assert unique_m < 0.7 * edges.geometry.to_crs(3857).length.sum()


# ----------------------------------------------------------------------------------------------------------------
# Coordinates on AMap (GCJ-02) and Tianditu
# ----------------------------------------------------------------------------------------------------------------
def test_amap_places_a_known_point_at_its_gcj02_position():
    # A published WGS84 → GCJ-02 pair in Beijing (see tests/test_coords.py).
    wgs, gcj = (116.377817, 39.911954), (116.38404722455657, 39.91334545536069)
    agencies = _agency(*wgs)
    on_amap = _circle_markers(agency_map(agencies, basemap="amap", place=wgs))
    assert on_amap[0].location == pytest.approx([gcj[1], gcj[0]], abs=1e-7)
    assert on_amap[1].location == pytest.approx([gcj[1], gcj[0]], abs=1e-7)  # the resident's place, too
    on_osm = _circle_markers(agency_map(agencies, basemap="osm"))
    assert on_osm[0].location == pytest.approx([wgs[1], wgs[0]], abs=1e-12)


def test_amap_shift_is_forced_outside_china_and_clicks_invert(region):
    lon, lat = 1.5218, 42.5063  # Andorra la Vella
    d_lon, d_lat = to_display(lon, lat, basemap="amap")
    shift_m = np.hypot((d_lon - lon) * 111_320 * np.cos(np.radians(lat)), (d_lat - lat) * 110_540)
    assert 100 < shift_m < 2000  # GCJ-02's formula, applied far outside China
    back = from_display(d_lon, d_lat, basemap="amap")
    assert back == pytest.approx((lon, lat), abs=1e-8)
    assert to_display(lon, lat, basemap="none") == (lon, lat)
    # Polygons move with the points.
    shifted = maps.shift_frame(region.townships, basemap="amap")
    first = np.asarray(shifted.geometry.iloc[0].exterior.coords)[0]
    orig = np.asarray(region.townships.geometry.iloc[0].exterior.coords)[0]
    assert first == pytest.approx(to_display(orig[0], orig[1], basemap="amap"), abs=1e-12)


def test_route_is_drawn_and_shifted(region):
    from geo.finder import find_agencies

    unit = region.units.iloc[4]
    best = find_agencies(region, lon=unit.rep_lon, lat=unit.rep_lat, k=1).iloc[0]
    fmap = agency_map(region.agencies, basemap="amap", place=(unit.rep_lon, unit.rep_lat), route=best.geometry,
                      route_agency={"lon": best.agency_lon, "lat": best.agency_lat})
    lines = [e for e in _walk(fmap) if isinstance(e, folium.PolyLine)]
    assert len(lines) == 3  # road route and the two access legs
    start = np.asarray(best.geometry.coords)[0]
    assert lines[0].locations[0] == pytest.approx(list(to_display(start[0], start[1], basemap="amap"))[::-1], abs=1e-9)


def test_tianditu_needs_a_key(region):
    with pytest.raises(ValueError, match="TIANDITU_KEY"):
        agency_map(region.agencies, basemap="tianditu")
    fmap = agency_map(region.agencies, basemap="tianditu", tianditu_key="abc123")
    tiles = [e for e in _walk(fmap) if isinstance(e, folium.TileLayer)]
    assert len(tiles) == 2 and all("tk=abc123" in tile.tiles for tile in tiles)
    with pytest.raises(ValueError, match="unknown basemap"):
        agency_map(region.agencies, basemap="google")
