"""A planning region: road network, townships, planning units, agencies and the population layer, together.

The embedded demo region and any user region load into the same :class:`Region`, so every page and the command
line follow one code path after loading::

    region = load_demo_region()
    region = load_region(osm="county.osm.pbf", units="villages.csv", agencies="agencies.xlsx")
    matrix = region.travel_matrix()          # agencies × units, computed once and cached
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo import settings
from geo.errors import InputError, Problem
from geo.network import RoadNetwork, load_road_network
from geo.traveltime import TravelMatrix, travel_time_matrix

ATTRIBUTION = "© OpenStreetMap contributors (ODbL 1.0)"


@dataclass
class Region:
    """Everything the planner needs about one region.

    Attributes
    ----------
    name : str
    network : RoadNetwork
    townships : GeoDataFrame
        Township (乡镇) polygons with ``name`` (and ``residents_2023`` where known).
    units : GeoDataFrame
        Planning units following :mod:`geo.schema`.
    agencies : GeoDataFrame
        The agency registry following :mod:`geo.schema`.
    population : GeoDataFrame or None
        Population points (e.g. residential buildings with their estimate), for grid interpolation.
    """

    name: str
    network: RoadNetwork
    townships: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    agencies: gpd.GeoDataFrame
    population: gpd.GeoDataFrame | None = None
    meta: dict = field(default_factory=dict)
    _matrices: dict = field(default_factory=dict, repr=False)

    @property
    def boundary(self):
        """The region's outline (union of townships) in WGS84."""
        return self.townships.geometry.union_all()

    def travel_matrix(self, *, agencies: gpd.GeoDataFrame | None = None, units: gpd.GeoDataFrame | None = None,
                      engine: str = "auto") -> TravelMatrix:
        """Agencies × units minutes; cached per (agency ids and positions, unit ids) so reruns cost nothing."""
        agencies = self.agencies if agencies is None else agencies
        units = self.units if units is None else units
        key = (
            tuple(agencies["agency_id"].astype(str)),
            tuple(np.round(agencies.geometry.x, 7)), tuple(np.round(agencies.geometry.y, 7)),
            tuple(units["unit_id"].astype(str)), engine,
        )
        if key not in self._matrices:
            self._matrices[key] = travel_time_matrix(self.network, agencies, units, engine=engine)
        return self._matrices[key]

    def active_agencies(self) -> gpd.GeoDataFrame:
        from geo.schema import ACTIVE_STATUSES

        return self.agencies[self.agencies["status"].isin(ACTIVE_STATUSES)]

    def with_agencies(self, agencies: gpd.GeoDataFrame) -> "Region":
        """The same region with another agency registry (the network and its caches are shared)."""
        return Region(self.name, self.network, self.townships, self.units, agencies, self.population, dict(self.meta),
                      self._matrices)


def load_demo_region(folder: str | Path | None = None) -> Region:
    """The embedded demo region (Andorra, real OpenStreetMap data), from the files in ``data/andorra``."""
    folder = Path(folder or settings.demo_region_dir)
    missing = [n for n in ("roads.npz", "townships.geojson", "units.geojson", "agencies.geojson") if not (folder / n).exists()]
    if missing:
        raise InputError(f"the demo region in {folder} is incomplete", [Problem(f"missing {n}; run `make region`") for n in missing])
    network = RoadNetwork.load(folder / "roads.npz")
    townships = gpd.read_file(folder / "townships.geojson")
    units = _read_text_ids(gpd.read_file(folder / "units.geojson"), "unit_id")
    agencies = _read_text_ids(gpd.read_file(folder / "agencies.geojson"), "agency_id")
    population = gpd.read_file(folder / "population.gpkg") if (folder / "population.gpkg").exists() else None
    meta = json.loads((folder / "region.json").read_text()) if (folder / "region.json").exists() else {}
    meta.setdefault("attribution", ATTRIBUTION)
    meta["demo"] = True
    return Region("Andorra (demo)", network, townships, units, agencies, population, meta)


def _read_text_ids(frame: gpd.GeoDataFrame, column: str) -> gpd.GeoDataFrame:
    frame[column] = frame[column].astype(str)
    for col in ("leading", "demo", "name_generated", "phone_from_osm"):
        if col in frame:
            frame[col] = frame[col].astype(bool)
    return frame


def load_region(
    *,
    osm: str | Path | object,
    units: str | Path | gpd.GeoDataFrame | None = None,
    agencies: str | Path | gpd.GeoDataFrame | None = None,
    townships: str | Path | gpd.GeoDataFrame | None = None,
    name: str | None = None,
    coord_system: str = "wgs84",
    missing_population: str = "raise",
) -> Region:
    """A region from user files (or an OSMnx place name / polygon for ``osm``), through the same path as the demo.

    Parameters
    ----------
    osm : path, place name or polygon
        Road network source, see :func:`geo.network.load_road_network`.
    units : path or GeoDataFrame, optional
        Village/community units (polygons, or points that get Thiessen polygons). Without it, units are an H3
        grid over the network's extent with uniform weight.
    agencies : path or GeoDataFrame, optional
        Agency registry (CSV/XLSX/GeoJSON/GPKG).
    townships : path or GeoDataFrame, optional
        Township polygons; without them the units' ``township`` column defines them.
    missing_population : {"raise", "uniform"}
        For a units file without population: refuse it (default) or weigh every unit 1.

    The validation reports of the units and agencies files are kept in ``region.meta["reports"]``.
    """
    unit_report = agency_report = None
    network = load_road_network(osm)
    extent = network.extent_polygon()
    town = _read_townships(townships) if townships is not None else None
    boundary = town.geometry.union_all() if town is not None else extent

    if units is None:
        from geo.grid import build_grid

        unit_frame = build_grid(boundary, kind="h3", resolution=8)
        unit_frame["population"] = 1.0
        unit_frame["demand"] = unit_frame["population"] * settings.eligible_rate
        unit_frame.attrs["population_uniform"] = True
    elif isinstance(units, gpd.GeoDataFrame):
        unit_frame = units
    else:
        from geo.unit_files import read_unit_file

        unit_frame, unit_report = read_unit_file(
            units, boundary=boundary, extent=extent, missing_population=missing_population,
            road_nodes_xy=_road_points(network),
        )
    if "setting" not in unit_frame:
        unit_frame["setting"] = "rural"
    if "township" not in unit_frame:
        unit_frame["township"] = ""
    if "rep_lon" not in unit_frame:
        from geo.grid import place_representative_points

        unit_frame = place_representative_points(unit_frame, road_nodes_xy=_road_points(network))
    if town is None:
        town = unit_frame.dissolve(by="township", as_index=False)[["township", "geometry"]].rename(columns={"township": "name"})

    if agencies is None:
        agency_frame = gpd.GeoDataFrame(columns=["agency_id", "name", "care_type", "status"], geometry=[], crs="EPSG:4326")
    elif isinstance(agencies, gpd.GeoDataFrame):
        agency_frame = agencies
    else:
        from geo.registry import read_agencies

        agency_frame, agency_report = read_agencies(agencies, coord_system=coord_system, region=boundary, strict=False)
    label = name or (Path(str(osm)).name if not hasattr(osm, "geom_type") else "polygon")
    return Region(label, network, town, unit_frame, agency_frame, None,
                  {"source": str(label), "demo": False, "attribution": ATTRIBUTION,
                   "reports": {"units": unit_report, "agencies": agency_report}})


def _road_points(network: RoadNetwork) -> np.ndarray:
    """Road nodes plus the vertices along each edge: where a unit's representative point may sit."""
    if network.edge_coords is not None and len(network.edge_coords):
        return np.vstack([np.column_stack([network.lon, network.lat]), network.edge_coords])
    return np.column_stack([network.lon, network.lat])


def _read_townships(source) -> gpd.GeoDataFrame:
    frame = source if isinstance(source, gpd.GeoDataFrame) else gpd.read_file(source)
    if frame.crs is None:
        raise InputError("the townships file has no CRS; save it as WGS84 (EPSG:4326)", [Problem("no CRS", code="crs")])
    frame = frame.to_crs("EPSG:4326")
    if "name" not in frame:
        for alt in ("township", "乡镇", "街道", "NAME"):
            if alt in frame:
                frame = frame.rename(columns={alt: "name"})
                break
    if "name" not in frame:
        raise InputError("the townships file needs a name column (name / township / 乡镇)")
    return frame


def frame_summary(frame: pd.DataFrame) -> dict:
    """Counts used in empty states and headers."""
    return {"rows": int(len(frame)), "columns": list(map(str, frame.columns))}
