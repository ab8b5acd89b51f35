"""Folium maps that draw with no internet: the colour-coded agency map, its legend, layers, routes and basemaps.

Pure folium (no Streamlit), so maps can be rendered to HTML in tests, reports and the command line.

Offline by construction: :class:`OfflineMap` loads only Leaflet 1.9.4 from the app's own static files
(``static/leaflet``, served by Streamlit at ``/app/static``), never folium's CDN defaults (jQuery, Bootstrap,
Font Awesome, awesome-markers). Markers are ``CircleMarker`` paths and the legend is a plain Leaflet control, so
nothing needs an icon font. streamlit-folium loads exactly the ``default_js``/``default_css`` of the map's elements
and strips every other ``<script src>``/``<link>`` from the header, so the same holds inside the app.

Basemaps: ``none`` (default; the region's own main roads and township borders as vector layers), ``osm``,
``amap`` (GCJ-02 tiles: every overlay is shifted into GCJ-02 so it sits on the right street) and ``tianditu``
(CGCS2000, which agrees with WGS84 at map scale; needs a key).
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import Element, MacroElement
from folium.template import Template

from geo.schema import CARE_TYPE_COLORS, CARE_TYPES
from ui.strings import label, modes_label, t

#: Where Streamlit serves ``static/`` when ``server.enableStaticServing`` is on.
DEFAULT_ASSET_BASE = "/app/static"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PLACEHOLDER_PHOTO = "img/agency_placeholder.svg"

#: Marker styling: status is shown by fill and outline, care type always by colour.
SUSPENDED_FILL = "#bdbdbd"
TERMINATED_FILL = "#eeeeee"
TERMINATED_STROKE = "#777777"
DESIGNATED_STROKE = "#333333"
PLANNED_FILL = "#ffffff"
UNIT_FILL = "#d9d2c3"
UNIT_STROKE = "#9e9a90"
TOWNSHIP_STROKE = "#555555"
ROUTE_COLOR = "#6a1b9a"
PLACE_COLOR = "#000000"
ROAD_STYLES: dict[str, tuple[str, float]] = {
    "motorway": ("#7a7a7a", 3.5), "trunk": ("#7a7a7a", 3.0), "primary": ("#8a8a8a", 2.6),
    "secondary": ("#a0a0a0", 2.0), "tertiary": ("#b8b8b8", 1.5),
}
#: Background of the vector-only map (no tiles): a paper tone so grey roads and coloured markers stand out.
VECTOR_BACKGROUND = "#f4f1ea"
#: Room kept free of data on the map's left edge for the legend.
LEGEND_WIDTH_PX = 150
#: Photos in the workspace larger than this are not inlined into the popup (the map HTML would balloon).
MAX_INLINE_PHOTO_BYTES = 300_000


@dataclass(frozen=True)
class Basemap:
    key: str
    tiles: tuple[str, ...]
    attribution: str
    subdomains: str = "abc"
    gcj02: bool = False
    needs_key: bool = False
    max_zoom: int = 18


BASEMAPS: dict[str, Basemap] = {
    "none": Basemap("none", (), ""),
    "osm": Basemap("osm", ("https://tile.openstreetmap.org/{z}/{x}/{y}.png",),
                   '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors', "abc",
                   max_zoom=19),
    "amap": Basemap("amap", ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                             "&x={x}&y={y}&z={z}",), "&copy; 高德地图 AutoNavi", "1234", gcj02=True),
    # Vector map plus its annotation layer (place names); both Web-Mercator WMTS.
    "tianditu": Basemap("tianditu", (
        "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec&STYLE=default"
        "&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}",
        "https://t{s}.tianditu.gov.cn/cva_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=cva&STYLE=default"
        "&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}",
    ), "&copy; 天地图 Tianditu", "01234567", needs_key=True),
}


# ----------------------------------------------------------------------------------------------------------------
# Offline Leaflet
# ----------------------------------------------------------------------------------------------------------------
class OfflineMap(folium.Map):
    """A ``folium.Map`` whose only front-end assets are Leaflet's JS and CSS under ``asset_base``."""

    def __init__(self, *args, asset_base: str = DEFAULT_ASSET_BASE, **kwargs):
        super().__init__(*args, **kwargs)
        # Instance lists: folium's class-level defaults (CDN links) stay untouched for other maps.
        self.default_js = [("leaflet", f"{asset_base}/leaflet/leaflet.js")]
        self.default_css = [("leaflet_css", f"{asset_base}/leaflet/leaflet.css")]


class Popup(folium.Popup):
    """``folium.Popup`` without jQuery: folium parses the popup HTML with ``$(...)``, which needs jQuery from a CDN."""

    _template = Template(
        """
        var {{this.get_name()}} = L.popup({{ this.options|tojavascript }});
        {% for name, element in this.html._children.items() %}
            var {{ name }} = (function () {
                var holder = document.createElement("div");
                holder.innerHTML = `{{ element.render(**kwargs).replace('\\n',' ') }}`;
                return holder.firstElementChild;
            })();
            {{ this.get_name() }}.setContent({{ name }});
        {% endfor %}
        {{ this._parent.get_name() }}.bindPopup({{ this.get_name() }});
        """
    )


def external_asset_links(fmap: folium.Map) -> list[str]:
    """Every script/stylesheet URL the map would load from another host (should be empty).

    Checks both the rendered page and the element link lists streamlit-folium reads.
    """
    import re

    page = fmap.get_root().render()
    tags = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)|<link[^>]*\bhref=[\"']([^\"']+)", page, flags=re.I)
    urls = [a or b for a, b in tags]

    def walk(element):
        yield element
        for child in getattr(element, "_children", {}).values():
            yield from walk(child)

    for element in walk(fmap):
        urls += [u for _, u in getattr(element, "default_js", [])] + [u for _, u in getattr(element, "default_css", [])]
    return sorted({u for u in urls if re.match(r"^(https?:)?//", u)})


# ----------------------------------------------------------------------------------------------------------------
# Coordinates on screen
# ----------------------------------------------------------------------------------------------------------------
def to_display(lon, lat, *, basemap: str = "none"):
    """WGS84 → the basemap's coordinates (GCJ-02 for AMap, forced also outside China so the demo lines up)."""
    if BASEMAPS[basemap].gcj02:
        from geo.coords import from_wgs84

        return from_wgs84(lon, lat, target="gcj02", force=True)
    return lon, lat


def from_display(lon, lat, *, basemap: str = "none"):
    """The basemap's coordinates (e.g. a map click on AMap) → WGS84."""
    if BASEMAPS[basemap].gcj02:
        from geo.coords import to_wgs84

        return to_wgs84(lon, lat, source="gcj02", force=True)
    return lon, lat


def _shift_coords(xy: np.ndarray, basemap: str) -> np.ndarray:
    lon, lat = to_display(xy[:, 0], xy[:, 1], basemap=basemap)
    return np.column_stack([lon, lat])


def shift_frame(frame: gpd.GeoDataFrame, *, basemap: str = "none") -> gpd.GeoDataFrame:
    """A copy of ``frame`` with every geometry in the basemap's coordinates."""
    if not BASEMAPS[basemap].gcj02 or len(frame) == 0:
        return frame
    out = frame.copy()
    out["geometry"] = shapely.transform(out.geometry.to_numpy(), lambda xy: _shift_coords(xy, basemap))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Markers and popups
# ----------------------------------------------------------------------------------------------------------------
def marker_style(care_type: str, status: str, *, leading: bool = False) -> dict:
    """CircleMarker options for an agency: colour = care type; fill/outline = status; larger when leading (龙头)."""
    colour = CARE_TYPE_COLORS.get(care_type, "#666666")
    radius = 11 if leading else 8
    if status == "suspended":
        return dict(radius=radius, color=colour, weight=3, fill=True, fill_color=SUSPENDED_FILL, fill_opacity=0.9,
                    dash_array="4 3")
    if status == "terminated":
        return dict(radius=radius, color=TERMINATED_STROKE, weight=1, fill=True, fill_color=TERMINATED_FILL,
                    fill_opacity=0.5, dash_array="2 3", opacity=0.6)
    if status == "planned":
        return dict(radius=radius, color=colour, weight=3, fill=True, fill_color=PLANNED_FILL, fill_opacity=0.9)
    return dict(radius=radius, color=DESIGNATED_STROKE, weight=1.5, fill=True, fill_color=colour, fill_opacity=0.95)


def visible_agencies(agencies: gpd.GeoDataFrame, *, show_terminated: bool = False) -> gpd.GeoDataFrame:
    """The agencies the map draws: terminated ones only when asked for."""
    if show_terminated or "status" not in agencies:
        return agencies
    return agencies[agencies["status"].astype(str) != "terminated"]


def photo_src(photo, *, asset_base: str = DEFAULT_ASSET_BASE) -> str:
    """An ``<img src>`` for an agency photo: a URL as is, a workspace file inlined, else the shipped placeholder."""
    text = "" if photo is None or (isinstance(photo, float) and np.isnan(photo)) else str(photo).strip()
    if text.startswith(("http://", "https://", "data:image/")):
        return text
    if text.startswith("/app/static/"):
        return text
    if text:
        path = Path(text)
        if not path.is_absolute():
            path = STATIC_DIR.parent / path
        if path.is_file() and path.stat().st_size <= MAX_INLINE_PHOTO_BYTES:
            mime = mimetypes.guess_type(path.name)[0] or "image/jpeg"
            return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
    return f"{asset_base}/{PLACEHOLDER_PHOTO}"


def _number(value, fmt="{:,.0f}") -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if np.isnan(value) else fmt.format(value)


def popup_html(row, *, lang: str = "zh", asset_base: str = DEFAULT_ASSET_BASE) -> str:
    """The agency popup: name, photo, type, status, address, phone, modes, people served, caregivers, score."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    esc = lambda v: html.escape("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))  # noqa: E731
    placeholder = f"{asset_base}/{PLACEHOLDER_PHOTO}"
    colour = CARE_TYPE_COLORS.get(str(get("care_type")), "#666")
    rows = [
        (t("popup.type", lang=lang), f'<span style="color:{colour};font-weight:600">'
                                     f'{esc(label("care_type", str(get("care_type")), lang=lang))}</span>'),
        (t("popup.status", lang=lang), esc(label("status", str(get("status")), lang=lang))),
        (t("popup.address", lang=lang), esc(get("address"))),
        (t("popup.phone", lang=lang), f'<a href="tel:{esc(get("phone"))}">{esc(get("phone"))}</a>'),
        (t("popup.modes", lang=lang), esc(modes_label(get("service_modes", ""), lang=lang))),
        (t("popup.served", lang=lang), _number(get("clients_served"))),
        (t("popup.caregivers", lang=lang), _number(get("certified_caregivers"))),
        (t("popup.quality", lang=lang), _number(get("quality_score"), "{:.1f}")),
    ]
    if bool(get("leading", False)):
        rows.append((t("popup.leading", lang=lang), t("yes", lang=lang)))
    table = "".join(f'<tr><th style="text-align:left;padding-right:6px;white-space:nowrap;color:#555">{k}</th>'
                    f"<td>{v}</td></tr>" for k, v in rows)
    demo = (f'<div class="ltci-demo" style="margin-top:4px;color:#a15c00;font-size:11px">'
            f'{t("popup.demo", lang=lang)}</div>') if bool(get("demo", False)) else ""
    src = photo_src(get("photo"), asset_base=asset_base)
    # The popup travels inside a JS template literal: a backtick or "${" in a name must not end or inject it.
    return _literal_safe(
        f'<div class="ltci-popup" style="font-size:12px;min-width:220px">'
        f'<div style="font-weight:700;font-size:14px;margin-bottom:4px">{esc(get("name"))}</div>'
        f'<img src="{html.escape(src)}" alt="{t("popup.photo_alt", lang=lang)}" width="220" height="120" '
        f'style="object-fit:cover;border-radius:4px;background:#eee" '
        f"onerror=\"this.onerror=null;this.src='{placeholder}'\"/>"
        f"<table style=\"margin-top:4px\">{table}</table>{demo}</div>"
    )


def _literal_safe(text: str) -> str:
    return text.replace("`", "&#96;").replace("${", "&#36;{").replace("\\", "&#92;")


# ----------------------------------------------------------------------------------------------------------------
# Legend
# ----------------------------------------------------------------------------------------------------------------
class Legend(MacroElement):
    """A Leaflet control with the legend's HTML (plain DOM, no plugin)."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
        .ltci-legend {background: rgba(255,255,255,0.93); padding: 8px 10px; border-radius: 6px; line-height: 1.5;
                      box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 12px/1.5 "Noto Sans CJK SC", "Microsoft YaHei",
                      "PingFang SC", sans-serif; color: #222;}
        .ltci-legend .sw {display: inline-block; width: 12px; height: 12px; border-radius: 50%;
                          margin-right: 6px; vertical-align: -2px; box-sizing: border-box;}
        .ltci-legend .ttl {font-weight: 700; margin: 2px 0;}
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: "bottomleft"});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create("div", "ltci-legend");
            div.innerHTML = {{ this.legend_html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, legend_html: str):
        super().__init__()
        self._name = "Legend"
        self.legend_html = legend_html


def legend_html(*, lang: str = "zh", show_terminated: bool = False, show_planned: bool = False,
                route: bool = False) -> str:
    """The legend: the three care-type colours, then how each status is drawn."""
    def swatch(fill, stroke, width=1.5, dash=False):
        style = f"background:{fill};border:{width}px {'dashed' if dash else 'solid'} {stroke}"
        return f'<span class="sw" style="{style}"></span>'

    lines = [f'<div class="ttl">{t("map.legend.title", lang=lang)}</div>']
    for ct in CARE_TYPES:
        lines.append(f'<div data-care-type="{ct}">{swatch(CARE_TYPE_COLORS[ct], DESIGNATED_STROKE)}'
                     f'{label("care_type", ct, lang=lang)}</div>')
    lines.append(f'<div class="ttl">{t("map.legend.status", lang=lang)}</div>')
    lines.append(f'<div>{swatch(CARE_TYPE_COLORS["home"], DESIGNATED_STROKE)}{label("status", "designated", lang=lang)}</div>')
    lines.append(f'<div>{swatch(SUSPENDED_FILL, CARE_TYPE_COLORS["home"], 3, True)}{t("map.legend.suspended", lang=lang)}</div>')
    if show_planned:
        lines.append(f'<div>{swatch(PLANNED_FILL, CARE_TYPE_COLORS["home"], 3)}{t("map.legend.planned", lang=lang)}</div>')
    if show_terminated:
        lines.append(f'<div>{swatch(TERMINATED_FILL, TERMINATED_STROKE, 1, True)}{t("map.legend.terminated", lang=lang)}</div>')
    if route:
        lines.append(f'<div>{swatch(PLACE_COLOR, "#ffffff")}{t("map.legend.place", lang=lang)}</div>')
        lines.append(f'<div><span class="sw" style="border-radius:0;height:4px;vertical-align:2px;'
                     f'background:{ROUTE_COLOR}"></span>{t("map.legend.route", lang=lang)}</div>')
    return "".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# The map
# ----------------------------------------------------------------------------------------------------------------
def _bounds(*frames) -> list[list[float]]:
    boxes = [f.total_bounds for f in frames if f is not None and len(f)]
    box = np.array(boxes)
    return [[float(box[:, 1].min()), float(box[:, 0].min())], [float(box[:, 3].max()), float(box[:, 2].max())]]


def base_map(*, bounds, basemap: str = "none", tianditu_key: str | None = None, lang: str = "zh",
             asset_base: str = DEFAULT_ASSET_BASE) -> folium.Map:
    """An empty offline map fitted to ``bounds`` ([[south, west], [north, east]], display coordinates).

    Raises
    ------
    ValueError
        Unknown basemap, or Tianditu without a key.
    """
    if basemap not in BASEMAPS:
        raise ValueError(f"unknown basemap {basemap!r}; use one of {list(BASEMAPS)}")
    spec = BASEMAPS[basemap]
    if spec.needs_key and not tianditu_key:
        raise ValueError("the Tianditu basemap needs a key (TIANDITU_KEY)")
    centre = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    # Quarter-step zoom: fitting the region (and the legend's margin) does not fall back a whole zoom level.
    fmap = OfflineMap(location=centre, zoom_start=11, tiles=None, control_scale=True, prefer_canvas=False,
                      zoom_snap=0.25, zoom_delta=0.5, asset_base=asset_base)
    for i, url in enumerate(spec.tiles):
        folium.TileLayer(
            tiles=url.replace("{key}", tianditu_key or ""), attr=spec.attribution, name=t(f"map.basemap.{basemap}", lang=lang)
            if i == 0 else f'{t(f"map.basemap.{basemap}", lang=lang)} · labels', subdomains=spec.subdomains,
            max_zoom=spec.max_zoom, overlay=i > 0, control=i > 0,
        ).add_to(fmap)
    if basemap == "none":
        fmap.get_root().header.add_child(
            Element(f"<style>.leaflet-container {{ background: {VECTOR_BACKGROUND}; }}</style>"))
    # Keep the legend (bottom-left, about 150 px wide) from covering agencies when the map opens.
    fmap.fit_bounds(bounds, padding_top_left=(LEGEND_WIDTH_PX, 10), padding_bottom_right=(10, 10))
    return fmap


def lighten(frame: gpd.GeoDataFrame, *, tolerance_deg: float = 0.00005, decimals: int = 5) -> gpd.GeoDataFrame:
    """Geometries simplified (≈5 m) and rounded to 5 decimals (≈1 m): a lighter map page with no visible change."""
    if frame is None or len(frame) == 0:
        return frame
    geoms = shapely.simplify(frame.geometry.to_numpy(), tolerance_deg, preserve_topology=True)
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, decimals))
    return frame.assign(geometry=geoms)


def basemap_roads(edges: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The vector basemap's roads: one merged, simplified line per class (from ``geo.network.edges_frame``).

    Merging by class turns thousands of edge features into a handful, so the map page stays small (the demo's
    tertiary-and-above roads: 1.3 MB of GeoJSON as edges, about 0.12 MB merged).
    """
    classes = edges["highway"].astype(str).str.replace("_link", "", regex=False)
    rows = [(c, shapely.line_merge(shapely.union_all(g.geometry.to_numpy()))) for c, g in edges.groupby(classes)]
    frame = gpd.GeoDataFrame({"highway": [c for c, _ in rows]}, geometry=[g for _, g in rows], crs=edges.crs)
    return lighten(frame)


def _geojson(frame: gpd.GeoDataFrame, columns: list[str]) -> dict:
    cols = [c for c in columns if c in frame]
    return json.loads(frame[cols + ["geometry"]].to_json(drop_id=True))


def agency_map(
    agencies: gpd.GeoDataFrame,
    *,
    townships: gpd.GeoDataFrame | None = None,
    units: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
    basemap: str = "none",
    lang: str = "zh",
    show_terminated: bool = False,
    place: tuple[float, float] | None = None,
    route=None,
    route_agency: dict | None = None,
    tianditu_key: str | None = None,
    asset_base: str = DEFAULT_ASSET_BASE,
) -> folium.Map:
    """The colour-coded agency map with legend, unit and township layers, and an optional route.

    Parameters
    ----------
    agencies : GeoDataFrame
        Registry rows to draw (already filtered by the caller); terminated ones are hidden unless
        ``show_terminated``.
    townships, units : GeoDataFrame, optional
        Township borders and village units (tooltip: name and township).
    roads : GeoDataFrame, optional
        Main roads, ``basemap_roads(geo.network.edges_frame(network, min_class="tertiary"))`` (prepare once and
        reuse), drawn as the vector basemap; shown by default only when ``basemap="none"``.
    basemap : {"none", "osm", "amap", "tianditu"}
    place : (lon, lat), optional
        The resident's place (WGS84).
    route : shapely LineString, optional
        The road route to draw (WGS84), e.g. the ``geometry`` of a :func:`geo.finder.find_agencies` row.
    route_agency : dict, optional
        ``{"lon", "lat"}`` of the route's agency, to draw the access legs from the road to the doors.

    Returns
    -------
    folium.Map
        Loads no asset from the internet (tiles aside when an online basemap is chosen).
    """
    if basemap not in BASEMAPS:
        raise ValueError(f"unknown basemap {basemap!r}; use one of {list(BASEMAPS)}")
    shown = visible_agencies(agencies, show_terminated=show_terminated)
    town_d = shift_frame(lighten(townships), basemap=basemap) if townships is not None else None
    unit_d = shift_frame(lighten(units), basemap=basemap) if units is not None else None
    shown_d = shift_frame(shown, basemap=basemap)
    bounds = _bounds(town_d, unit_d, shown_d if len(shown_d) else None)
    fmap = base_map(bounds=bounds, basemap=basemap, tianditu_key=tianditu_key, lang=lang, asset_base=asset_base)

    if roads is not None and len(roads):
        roads_d = shift_frame(roads, basemap=basemap)
        layer = folium.FeatureGroup(name=t("map.layer.roads", lang=lang), show=basemap == "none")
        folium.GeoJson(
            _geojson(roads_d, ["highway"]),
            style_function=lambda f: {"color": ROAD_STYLES.get(str(f["properties"].get("highway", "")).replace("_link", ""),
                                                               ROAD_STYLES["tertiary"])[0],
                                      "weight": ROAD_STYLES.get(str(f["properties"].get("highway", "")).replace("_link", ""),
                                                                ROAD_STYLES["tertiary"])[1],
                                      "opacity": 0.9, "fill": False},
            interactive=False, smooth_factor=1.0,
        ).add_to(layer)
        layer.add_to(fmap)

    if unit_d is not None and len(unit_d):
        unit_d = unit_d.assign(tip=[t("tooltip.unit", lang=lang, name=n, township=w)
                                    for n, w in zip(unit_d["name"], unit_d.get("township", [""] * len(unit_d)))])
        layer = folium.FeatureGroup(name=t("map.layer.units", lang=lang), show=True)
        folium.GeoJson(
            _geojson(unit_d, ["unit_id", "tip"]),
            style_function=lambda f: {"color": UNIT_STROKE, "weight": 0.7, "fillColor": UNIT_FILL, "fillOpacity": 0.18},
            highlight_function=lambda f: {"weight": 2, "fillOpacity": 0.35},
            tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False),
        ).add_to(layer)
        layer.add_to(fmap)

    if town_d is not None and len(town_d):
        layer = folium.FeatureGroup(name=t("map.layer.townships", lang=lang), show=True)
        folium.GeoJson(
            _geojson(town_d, ["name"]),
            style_function=lambda f: {"color": TOWNSHIP_STROKE, "weight": 2.2, "fill": False, "dashArray": "6 4"},
            interactive=False,
        ).add_to(layer)
        layer.add_to(fmap)

    if route is not None:
        layer = folium.FeatureGroup(name=t("map.layer.route", lang=lang), show=True)
        line = shift_frame(gpd.GeoDataFrame(geometry=[route], crs="EPSG:4326"), basemap=basemap).geometry.iloc[0]
        coords = [[y, x] for x, y in np.asarray(line.coords)]
        folium.PolyLine(coords, color=ROUTE_COLOR, weight=5, opacity=0.85).add_to(layer)
        if route_agency is not None:
            a_lon, a_lat = to_display(route_agency["lon"], route_agency["lat"], basemap=basemap)
            folium.PolyLine([[a_lat, a_lon], coords[0]], color=ROUTE_COLOR, weight=3, dash_array="4 4").add_to(layer)
        if place is not None:
            p_lon, p_lat = to_display(place[0], place[1], basemap=basemap)
            folium.PolyLine([coords[-1], [p_lat, p_lon]], color=ROUTE_COLOR, weight=3, dash_array="4 4").add_to(layer)
        layer.add_to(fmap)

    layer = folium.FeatureGroup(name=t("map.layer.agencies", lang=lang), show=True)
    for row, geom in zip(shown.to_dict("records"), shown_d.geometry):
        style = marker_style(str(row.get("care_type")), str(row.get("status")), leading=bool(row.get("leading", False)))
        folium.CircleMarker(
            location=[geom.y, geom.x],
            popup=Popup(popup_html(row, lang=lang, asset_base=asset_base), max_width=280),
            tooltip=html.escape(f'{row.get("name")} · {label("care_type", str(row.get("care_type")), lang=lang)}'),
            # Opening an agency's card is not a map click: it must not move the resident's chosen place.
            bubbling_mouse_events=False,
            **style,
        ).add_to(layer)
    layer.add_to(fmap)

    if place is not None:
        p_lon, p_lat = to_display(place[0], place[1], basemap=basemap)
        folium.CircleMarker(location=[p_lat, p_lon], radius=7, color="#ffffff", weight=2, fill=True,
                            fill_color=PLACE_COLOR, fill_opacity=1.0,
                            tooltip=t("map.layer.place", lang=lang)).add_to(fmap)

    statuses = set(shown["status"].astype(str)) if "status" in shown else set()
    Legend(legend_html(lang=lang, show_terminated="terminated" in statuses, show_planned="planned" in statuses,
                       route=route is not None or place is not None)).add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    return fmap
