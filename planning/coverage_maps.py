"""Map layers for coverage: travel-time choropleth, agency isochrones and uncovered units.

Layer builders return GeoDataFrames (testable, exportable, usable by any map library); the ``add_*`` helpers
draw them on a ``folium.Map``. Nothing here imports Streamlit.

Travel time is classed in fixed bands that match the default coverage thresholds, 0–15–30–45–60 minutes,
plus "over 60" and "unreachable", so the same colour means the same thing on every map and in every county.
"""

from __future__ import annotations

from typing import Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import MacroElement, Template

from geo.errors import InputError, Problem
from geo.schema import CARE_TYPE_COLORS, CRS

#: Class upper bounds in minutes (inclusive), matching ``geo.settings.coverage_thresholds_min``.
MINUTE_BREAKS: tuple[float, ...] = (15.0, 30.0, 45.0, 60.0)
#: One colour per class: four bands within 60 minutes (green → red, ColorBrewer RdYlGn), over 60, unreachable.
CLASS_COLORS: tuple[str, ...] = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027", "#9e9e9e")
UNCOVERED_COLOR = "#7b2cbf"


def classify_minutes(minutes, *, breaks: Sequence[float] = MINUTE_BREAKS) -> tuple[np.ndarray, list[str]]:
    """Class index of each travel time and the class labels.

    Classes are ``0–b1``, ``b1–b2``, …, ``> b_last`` and ``unreachable`` (``inf`` or NaN); upper bounds are
    inclusive so a 15.0-minute unit falls in the class covered at 15 minutes.

    Returns
    -------
    (numpy.ndarray, list of str)
        Integer class per value (``len(breaks) + 1`` = unreachable) and the ``len(breaks) + 2`` labels.
    """
    edges = np.asarray(sorted(float(b) for b in breaks))
    t = np.asarray(minutes, dtype=float)
    klass = np.searchsorted(edges, t, side="left")
    klass = np.where(np.isfinite(t), klass, len(edges) + 1)
    lows = np.concatenate([[0.0], edges[:-1]])
    labels = [f"{lo:g}–{hi:g} min" for lo, hi in zip(lows, edges)] + [f"> {edges[-1]:g} min", "unreachable"]
    return klass.astype(np.int64), labels


def _class_colors(n_classes: int) -> list[str]:
    if n_classes == len(CLASS_COLORS):
        return list(CLASS_COLORS)
    import branca.colormap as cm

    ramp = cm.LinearColormap(list(CLASS_COLORS[:5]), vmin=0, vmax=1)
    return [ramp(i / max(1, n_classes - 2)) for i in range(n_classes - 1)] + [CLASS_COLORS[-1]]


def travel_time_layer(model, *, breaks: Sequence[float] = MINUTE_BREAKS) -> gpd.GeoDataFrame:
    """Units with their minutes to the nearest active agency, class label and colour.

    Parameters
    ----------
    model : planning.coverage.CoverageModel
        A solved model.
    breaks : sequence of float

    Returns
    -------
    GeoDataFrame
        ``unit_id``, ``name``, ``township``, ``population``, ``demand``, ``nearest_minutes``,
        ``nearest_agency_name``, ``minutes_class``, ``minutes_label``, ``color`` and geometry (EPSG:4326).
    """
    metrics = model.unit_metrics(thresholds=breaks)
    klass, labels = classify_minutes(metrics["nearest_minutes"], breaks=breaks)
    colors = np.asarray(_class_colors(len(labels)), dtype=object)
    keep = [c for c in ("unit_id", "name", "township", "population", "demand", "nearest_minutes",
                        "nearest_agency_name") if c in metrics]
    layer = gpd.GeoDataFrame(metrics[keep + ["geometry"]].copy(), geometry="geometry", crs=metrics.crs or CRS)
    layer["minutes_class"] = klass
    layer["minutes_label"] = np.asarray(labels, dtype=object)[klass]
    layer["color"] = colors[klass]
    return layer.to_crs(CRS)


def uncovered_layer(model, *, threshold: float | None = None) -> gpd.GeoDataFrame:
    """The units beyond ``threshold`` minutes of every active agency, with their geometry, largest demand first."""
    table = model.uncovered_units(threshold=threshold)
    shapes = model.units.set_index(model.units["unit_id"].astype(str)).geometry
    layer = gpd.GeoDataFrame(table, geometry=shapes.reindex(table["unit_id"]).to_numpy(),
                             crs=model.units.crs or CRS)
    return layer.to_crs(CRS)


def isochrone_layer(isochrones: gpd.GeoDataFrame, agencies: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """Validate isochrone polygons (``agency_id``, ``minutes``, geometry) and add agency name, care type, colour.

    Larger areas come first so that drawing in order leaves the smaller ones on top.
    """
    problems = [Problem(f"isochrones need a {c!r} column", column=c) for c in ("agency_id", "minutes", "geometry")
                if c not in isochrones.columns]
    if problems:
        raise InputError("isochrone layer cannot be drawn", problems)
    layer = isochrones.copy()
    layer["agency_id"] = layer["agency_id"].astype(str)
    if agencies is not None:
        info = agencies[[c for c in ("agency_id", "name", "care_type") if c in agencies]].copy()
        info["agency_id"] = info["agency_id"].astype(str)
        layer = layer.merge(info, on="agency_id", how="left")
    if "care_type" not in layer:
        layer["care_type"] = ""
    if "name" not in layer:
        layer["name"] = layer["agency_id"]
    layer["color"] = layer["care_type"].map(CARE_TYPE_COLORS).fillna("#555555")
    layer = gpd.GeoDataFrame(layer, geometry="geometry", crs=isochrones.crs or CRS).to_crs(CRS)
    return layer.sort_values(["agency_id", "minutes"], ascending=[True, False]).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------- folium
_LEGEND = """
{% macro html(this, kwargs) %}
<div style="position: fixed; bottom: 24px; left: 24px; z-index: 9999; background: white; padding: 8px 10px;
            border: 1px solid #999; border-radius: 4px; font: 12px sans-serif; line-height: 18px;">
  <b>{{ this.title }}</b><br>
  {% for label, color in this.items %}
  <span style="display:inline-block; width:14px; height:14px; background:{{ color }}; opacity:0.8;
               vertical-align:middle; margin-right:6px; border:1px solid #666;"></span>{{ label }}<br>
  {% endfor %}
</div>
{% endmacro %}
"""


class Legend(MacroElement):
    """A fixed HTML legend of coloured boxes and labels."""

    def __init__(self, title: str, items: list[tuple[str, str]]):
        super().__init__()
        self._name = "Legend"
        self.title = title
        self.items = items
        self._template = Template(_LEGEND)


def _geojson(layer: gpd.GeoDataFrame, columns: list[str]) -> dict:
    out = layer[[c for c in columns if c in layer] + ["geometry"]].copy()
    for c in out.columns:
        if c != "geometry" and pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(1).where(np.isfinite(out[c]), None)
    return out.__geo_interface__


def add_travel_time_choropleth(fmap: folium.Map, layer: gpd.GeoDataFrame, *, name: str = "Minutes to nearest agency",
                               breaks: Sequence[float] = MINUTE_BREAKS, legend: bool = True) -> folium.FeatureGroup:
    """Draw :func:`travel_time_layer` as a classed choropleth with a legend of every class (same ``breaks``)."""
    group = folium.FeatureGroup(name=name, show=True)
    folium.GeoJson(
        _geojson(layer, ["unit_id", "name", "township", "nearest_minutes", "minutes_label", "color",
                         "nearest_agency_name"]),
        style_function=lambda f: {"fillColor": f["properties"]["color"], "color": f["properties"]["color"],
                                  "weight": 0.3, "fillOpacity": 0.65},
        tooltip=folium.GeoJsonTooltip(fields=[c for c in ("name", "township", "minutes_label", "nearest_agency_name")
                                              if c in layer],
                                      aliases=["unit", "township", "travel time", "nearest agency"][
                                          : sum(c in layer for c in ("name", "township", "minutes_label",
                                                                     "nearest_agency_name"))]),
    ).add_to(group)
    group.add_to(fmap)
    if legend:
        _, labels = classify_minutes([0.0], breaks=breaks)
        Legend(name, list(zip(labels, _class_colors(len(labels))))).add_to(fmap)
    return group


def add_isochrones(fmap: folium.Map, layer: gpd.GeoDataFrame, *, show: bool = False) -> list[folium.FeatureGroup]:
    """One toggleable layer per agency holding its service areas (from :func:`isochrone_layer`)."""
    groups = []
    for agency_id, part in layer.groupby("agency_id", sort=True):
        label = str(part["name"].iloc[0]) if "name" in part else str(agency_id)
        group = folium.FeatureGroup(name=f"Service area: {label}", show=show)
        opacity = np.linspace(0.12, 0.3, len(part))
        for (_, row), alpha in zip(part.iterrows(), opacity):
            folium.GeoJson(
                {"type": "Feature", "properties": {"minutes": float(row["minutes"]), "name": label},
                 "geometry": row.geometry.__geo_interface__},
                style_function=lambda f, c=row["color"], a=float(alpha): {"fillColor": c, "color": c, "weight": 1,
                                                                          "fillOpacity": a},
                tooltip=f"{label}: {row['minutes']:g} min",
            ).add_to(group)
        group.add_to(fmap)
        groups.append(group)
    return groups


def add_uncovered_units(fmap: folium.Map, layer: gpd.GeoDataFrame, *, name: str = "Uncovered units") -> folium.FeatureGroup:
    """Outline the uncovered units (from :func:`uncovered_layer`) in a strong colour."""
    group = folium.FeatureGroup(name=name, show=True)
    if len(layer):
        folium.GeoJson(
            _geojson(layer, ["unit_id", "name", "township", "demand", "nearest_minutes"]),
            style_function=lambda f: {"color": UNCOVERED_COLOR, "weight": 2, "fillColor": UNCOVERED_COLOR,
                                      "fillOpacity": 0.15},
            tooltip=folium.GeoJsonTooltip(fields=[c for c in ("name", "township", "demand", "nearest_minutes")
                                                  if c in layer]),
        ).add_to(group)
    group.add_to(fmap)
    return group


def make_coverage_map(model, *, threshold: float | None = None, isochrones: gpd.GeoDataFrame | None = None,
                      breaks: Sequence[float] = MINUTE_BREAKS, tiles: str = "OpenStreetMap",
                      attribution: str | None = None) -> folium.Map:
    """A folium map with the travel-time choropleth, uncovered units, agencies and optional isochrones."""
    travel = travel_time_layer(model, breaks=breaks)
    minx, miny, maxx, maxy = travel.total_bounds
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=tiles, attr=attribution,
                      control_scale=True)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    add_travel_time_choropleth(fmap, travel, breaks=breaks)
    if isochrones is not None and len(isochrones):
        add_isochrones(fmap, isochrone_layer(isochrones, model.agencies))
    add_uncovered_units(fmap, uncovered_layer(model, threshold=threshold))
    if isinstance(model.agencies, gpd.GeoDataFrame):
        group = folium.FeatureGroup(name="Agencies", show=True)
        pts = model.agencies.to_crs(CRS)
        for active, (_, row) in zip(model.active, pts.iterrows()):
            color = CARE_TYPE_COLORS.get(str(row["care_type"]), "#555555")
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=6, color="#222" if active else "#999",
                                fill=True, fill_color=color if active else "#ffffff", fill_opacity=0.9,
                                tooltip=f"{row.get('name', row['agency_id'])} ({row['care_type']}, {row['status']})",
                                ).add_to(group)
        group.add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    return fmap
