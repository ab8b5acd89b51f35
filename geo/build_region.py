"""Rebuild the embedded demo region (``data/andorra/``) from the raw OpenStreetMap extract.

Run ``python -m geo.build_region`` (or ``make region``). Input: ``data/andorra/raw/`` (a copy of ``../shared/data/andorra/``; or ``--raw DIR``).
Outputs, all ODbL 1.0 derivative databases (© OpenStreetMap contributors):

- ``roads.npz``          drivable network, largest strongly connected component, travel time per edge
- ``townships.geojson``  the 7 parishes (admin_level 7) playing townships (乡镇), with 2023 residents
- ``population.gpkg``    residential building points with their dasymetric population (the population layer)
- ``units.geojson``      one village unit per town/village/hamlet: Voronoi cells within each parish
- ``agencies.geojson``   real care-relevant health facilities, deduplicated, with LTCI care types and flagged
                         illustrative figures
- ``region.json``        counts, checks and the parameters used

The methods are written up in ``data/SOURCES.md``; the numbers it quotes are printed by this script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import unicodedata
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import settings

UTM = "EPSG:32631"  # metric CRS for Andorra's geometry work
#: ISO 3166-2:AD codes of the parishes, used in unit ids.
PARISH_CODES = {
    "Canillo": "02", "Encamp": "03", "La Massana": "04", "Ordino": "05", "Sant Julià de Lòria": "06",
    "Andorra la Vella": "07", "Escaldes-Engordany": "08",
}
#: The seat (cap de parròquia) of each parish, for the remoteness part of the setting rule.
PARISH_SEATS = {
    "Canillo": "Canillo", "Encamp": "Encamp", "La Massana": "La Massana", "Ordino": "Ordino",
    "Sant Julià de Lòria": "Sant Julià de Lòria", "Andorra la Vella": "Andorra la Vella",
    "Escaldes-Engordany": "les Escaldes",
}

#: Building types that house nobody (or are not homes); everything else counts as residential floor space.
NON_RESIDENTIAL = frozenset({
    "shed", "hotel", "industrial", "roof", "school", "retail", "warehouse", "chapel", "church", "commercial",
    "office", "garage", "garages", "hangar", "barn", "public", "ruins", "hospital", "service", "farm_auxiliary",
    "college", "parking", "stable", "construction", "university", "hut", "kindergarten", "transportation",
    "grandstand", "cathedral", "religious", "civic", "government", "kiosk", "toilets", "greenhouse", "bunker",
    "sports_centre", "stadium", "train_station", "carport", "transformer_tower", "water_tower", "cabin",
})
#: Default storeys where ``building:levels`` is not tagged (floor area = footprint × storeys).
DEFAULT_LEVELS = {"apartments": 4.0, "residential": 3.0, "yes": 2.0}
MIN_FOOTPRINT_M2 = 20.0

#: Setting rule (documented in data/SOURCES.md): a unit is urban when ≥ URBAN_RESIDENTS_500M residents live
#: within 500 m of its centre (≈1,500 per km²); otherwise mountain when its centre is ≥ MOUNTAIN_MINUTES_COUNTY
#: by road from the county seat (the most populous unit, like a 县城), or ≥ MOUNTAIN_MINUTES_SEAT from its own
#: parish seat, or tagged ele ≥ MOUNTAIN_ELE_M; otherwise rural.
URBAN_RESIDENTS_500M = 1200
MOUNTAIN_MINUTES_COUNTY = 15.0
MOUNTAIN_MINUTES_SEAT = 10.0
MOUNTAIN_ELE_M = 1600.0

#: The country's one general hospital (Hospital de Nostra Senyora de Meritxell, OSM way 194554955) plays the county
#: hospital (县医院): its illustrative staffing is fixed at this many certified caregivers rather than drawn.
COUNTY_HOSPITAL = ("way", 194554955)
COUNTY_HOSPITAL_CAREGIVERS = 45

#: Health facilities that are not LTCI care providers, left out with the reason.
EXCLUDED_FACILITIES = {
    11066577115: "ophthalmology clinic (IMO), no long-term care",
    6564773288: "osteopath's practice, no long-term care",
    311481236: "children's shelter (Centre d'Acolliment d'Infants), not elderly or disability care",
}


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower().replace("’", "'").strip()


def _seed(text: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))


# ----------------------------------------------------------------------------------------------------------------
def build_townships(raw: Path) -> gpd.GeoDataFrame:
    parishes = gpd.read_file(raw / "andorra_admin_boundaries.geojson")[["name", "geometry"]]
    pop = pd.read_csv(raw / "parish_population_2023.csv")
    out = parishes.merge(pop[["parish", "residents_2023"]], left_on="name", right_on="parish", how="left")
    missing = out.loc[out["residents_2023"].isna(), "name"].tolist()
    if missing:
        raise SystemExit(f"parishes without a 2023 population: {missing}")
    out["township_code"] = "AD" + out["name"].map(PARISH_CODES)
    out["geometry"] = out.geometry.make_valid()
    return gpd.GeoDataFrame(out[["township_code", "name", "residents_2023", "geometry"]], crs="EPSG:4326")


def build_population(raw: Path, townships: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Residential building points carrying each parish's 2023 residents in proportion to floor area."""
    import osmium

    factory = osmium.geom.WKBFactory()
    rows = []
    pbf = raw / "andorra-latest.osm.pbf"
    for obj in osmium.FileProcessor(str(pbf)).with_areas().with_filter(osmium.filter.KeyFilter("building")):
        if not obj.is_area():
            continue
        kind = obj.tags.get("building", "yes")
        if kind in NON_RESIDENTIAL:
            continue
        try:
            geom = shapely.from_wkb(bytes.fromhex(factory.create_multipolygon(obj)))
        except RuntimeError:
            continue  # broken multipolygon in OSM: no footprint to weigh
        levels = obj.tags.get("building:levels")
        try:
            levels = max(1.0, float(str(levels).split(";")[0])) if levels else None
        except ValueError:
            levels = None
        rows.append({"osm_id": obj.orig_id(), "building": kind, "levels_tagged": levels is not None,
                     "levels": levels or DEFAULT_LEVELS.get(kind, 2.0), "geometry": geom})
    b = gpd.GeoDataFrame(rows, crs="EPSG:4326").to_crs(UTM)
    b["footprint_m2"] = b.area
    b = b[b["footprint_m2"] >= MIN_FOOTPRINT_M2].copy()
    b["floor_m2"] = b["footprint_m2"] * b["levels"]
    b["geometry"] = b.geometry.representative_point()
    b = gpd.sjoin(b, townships.to_crs(UTM)[["name", "residents_2023", "geometry"]], predicate="within", how="inner")
    b = b.rename(columns={"name": "township"})
    share = b["floor_m2"] / b.groupby("township")["floor_m2"].transform("sum")
    b["population"] = share * b["residents_2023"]
    return b[["osm_id", "building", "levels", "levels_tagged", "floor_m2", "township", "population", "geometry"]].to_crs(
        "EPSG:4326").reset_index(drop=True)


def build_units(raw: Path, townships: gpd.GeoDataFrame, population: gpd.GeoDataFrame, network) -> gpd.GeoDataFrame:
    from geo.traveltime import node_times_s, snap_points

    places = gpd.read_file(raw / "andorra_settlements.geojson")
    places = places[places["place"].isin(["town", "village", "hamlet"])].copy()
    rank = {"town": 0, "village": 1, "hamlet": 2}
    places["rank"] = places["place"].map(rank)
    places = places.sort_values(["rank", "osm_id"]).reset_index(drop=True)
    # The same place mapped twice (spelling variants a few hundred metres apart) is one unit.
    utm = places.to_crs(UTM)
    keep = np.ones(len(places), dtype=bool)
    for i in range(len(places)):
        for j in range(i):
            if keep[j] and utm.geometry.iloc[i].distance(utm.geometry.iloc[j]) < 400 and (
                _norm(places["name"].iloc[i])[:5] == _norm(places["name"].iloc[j])[:5]
            ):
                keep[i] = False
    merged = places.loc[~keep, "name"].tolist()
    places = places[keep].reset_index(drop=True)
    places["ele"] = pd.to_numeric(places.get("ele"), errors="coerce")
    places = gpd.sjoin(places, townships[["name", "geometry"]].rename(columns={"name": "township"}),
                       predicate="within", how="left").drop(columns="index_right")
    if places["township"].isna().any():
        raise SystemExit(f"settlements outside every parish: {places.loc[places['township'].isna(), 'name'].tolist()}")

    t_utm = townships.to_crs(UTM)
    p_utm = places.to_crs(UTM)
    cells = []
    for _, parish in t_utm.iterrows():
        inside = p_utm[p_utm["township"] == parish["name"]]
        if len(inside) == 1:
            parts = [parish.geometry]
        else:
            vor = shapely.voronoi_polygons(shapely.MultiPoint(list(inside.geometry)), extend_to=parish.geometry)
            parts = list(vor.geoms)
        for idx, pt in inside.geometry.items():
            cell = next(c for c in parts if c.contains(pt) or c.touches(pt))
            cells.append((idx, cell.intersection(parish.geometry)))
    geom = gpd.GeoSeries(dict(cells), crs=UTM).sort_index()
    units = places[["osm_id", "name", "place", "township", "ele", "geometry"]].copy()
    units["centre"] = units.geometry
    units = units.set_geometry(geom.to_crs("EPSG:4326").reindex(units.index).values, crs="EPSG:4326")

    # ids: AD + parish code + serial (text, like a statistical division code)
    units = units.sort_values(["township", "rank"] if "rank" in units else ["township", "name"]).reset_index(drop=True)
    units["unit_id"] = [
        f"AD{PARISH_CODES[t]}{n:03d}" for t, n in zip(units["township"], units.groupby("township").cumcount() + 1)
    ]
    unnamed = units["name"].isna() | (units["name"].astype(str).str.strip() == "")
    units.loc[unnamed, "name"] = [f"Llogaret sense nom (OSM {o})" for o in units.loc[unnamed, "osm_id"]]

    # Population: sum of the building points inside each cell (dasymetric).
    joined = gpd.sjoin(population[["population", "geometry"]], units[["unit_id", "geometry"]], predicate="within")
    units["population"] = units["unit_id"].map(joined.groupby("unit_id")["population"].sum()).fillna(0.0)

    # Representative point: the settlement centre (where people live), moved onto the nearest road node in the
    # unit when the centre is far from any road.
    centre = gpd.GeoSeries(units["centre"], crs="EPSG:4326")
    snap = snap_points(network, centre.x, centre.y, max_access_m=np.inf)
    far = snap.access_m > 300
    rep_lon, rep_lat = centre.x.to_numpy().copy(), centre.y.to_numpy().copy()
    rep_lon[far], rep_lat[far] = network.lon[snap.node[far]], network.lat[snap.node[far]]
    units["rep_lon"], units["rep_lat"] = rep_lon, rep_lat

    # Setting rule.
    c_utm = centre.to_crs(UTM)
    pop_utm = population.to_crs(UTM)
    tree = shapely.STRtree(pop_utm.geometry.values)
    near = [tree.query(pt.buffer(500), predicate="contains") for pt in c_utm]
    units["residents_500m"] = [float(pop_utm["population"].to_numpy()[ix].sum()) for ix in near]
    seat_names = units["township"].map(PARISH_SEATS)
    seats = units.set_index("name").loc[seat_names.values]
    seat_snap = snap_points(network, gpd.GeoSeries(seats["centre"]).x, gpd.GeoSeries(seats["centre"]).y,
                            max_access_m=np.inf)
    unit_snap = snap_points(network, rep_lon, rep_lat, max_access_m=np.inf)
    seat_min = np.array([node_times_s(network, [s], [u])[0, 0] / 60.0 for s, u in zip(seat_snap.node, unit_snap.node)])
    units["minutes_from_seat"] = seat_min
    county = int(units["population"].to_numpy().argmax())
    units["minutes_from_county_seat"] = node_times_s(network, [unit_snap.node[county]], unit_snap.node)[0] / 60.0
    urban = units["residents_500m"] >= URBAN_RESIDENTS_500M
    mountain = ~urban & (
        (units["minutes_from_county_seat"] >= MOUNTAIN_MINUTES_COUNTY)
        | (units["minutes_from_seat"] >= MOUNTAIN_MINUTES_SEAT)
        | (units["ele"] >= MOUNTAIN_ELE_M)
    )
    units["setting"] = np.where(urban, "urban", np.where(mountain, "mountain", "rural"))
    units["demand"] = units["population"] * settings.eligible_rate
    units["area_km2"] = units.to_crs(UTM).area / 1e6
    units.attrs["merged_duplicates"] = merged
    return gpd.GeoDataFrame(
        units[["unit_id", "name", "township", "setting", "population", "demand", "rep_lon", "rep_lat", "place",
               "osm_id", "residents_500m", "minutes_from_seat", "minutes_from_county_seat", "area_km2", "geometry"]],
        crs="EPSG:4326",
    )


def build_agencies(raw: Path, townships: gpd.GeoDataFrame, units: gpd.GeoDataFrame, network) -> gpd.GeoDataFrame:
    """Care-relevant facilities, deduplicated and typed; figures OSM lacks are illustrative and flagged."""
    h = gpd.read_file(raw / "andorra_health.geojson")
    h = h[~h["amenity"].isin(["pharmacy", "dentist"]) & ~h.get("healthcare", pd.Series(index=h.index)).isin(
        ["audiologist", "pharmacy", "dentist"])].copy()
    h = h[~h["osm_id"].isin(list(EXCLUDED_FACILITIES))]
    h["geometry"] = h.geometry.representative_point()
    h["named"] = h["name"].notna() & (h["name"].astype(str).str.strip() != "")
    utm = h.to_crs(UTM)
    named = utm[h["named"]]
    # An unnamed facility within 150 m of a named one is the same place mapped twice (hospital way + node).
    dup = [not n and named.distance(g).min() < 150 for n, g in zip(h["named"], utm.geometry)]
    h = h[~np.asarray(dup)].copy()

    def care_type(row) -> str:
        name = str(row.get("name") or "").lower()
        if row.get("amenity") == "social_facility" or "resid" in name or "socio-sanitari" in name:
            return "institution"
        if "atenció primària" in name or "atencio primaria" in _norm(name) or row.get("amenity") == "doctors":
            return "home"
        if row.get("amenity") == "hospital" or row.get("healthcare") == "hospital" or "clínica" in name:
            return "hospital"
        return "home"

    h["care_type"] = h.apply(care_type, axis=1)
    h = gpd.sjoin(h, townships[["name", "geometry"]].rename(columns={"name": "township"}), predicate="within",
                  how="left").drop(columns="index_right")
    h = h[h["township"].notna()].copy()  # a facility across the border serves another country
    # Unnamed facilities are named after their nearest village; one per village.
    centres = gpd.GeoSeries(gpd.points_from_xy(units["rep_lon"], units["rep_lat"]), crs="EPSG:4326").to_crs(UTM)
    nearest = [units["name"].iloc[int(centres.distance(g).argmin())] for g in h.to_crs(UTM).geometry]
    h["nearest_village"] = nearest
    unnamed = ~h["named"]
    h.loc[unnamed, "name"] = [f"Punt sanitari de {v}" for v in h.loc[unnamed, "nearest_village"]]
    h = h[~(unnamed & h.duplicated("name"))]
    # A facility beyond the access distance from every drivable road (a first-aid post on a ski slope) cannot be
    # a base for care workers' trips.
    from geo.traveltime import snap_points

    snap = snap_points(network, h.geometry.x, h.geometry.y)
    off_road = h.loc[~snap.reachable, "name"].tolist()
    h = h[snap.reachable].copy()

    rows = []
    for _, r in h.sort_values("osm_id").iterrows():
        aid = f"osm-{str(r['osm_type'])[0]}{int(r['osm_id'])}"
        rng = _seed(aid)
        # Illustrative staffing: a named hospital mapped as a building is a full hospital; an unnamed hospital
        # node is a small first-aid post; institutions and home-care providers sit in between.
        if r["care_type"] == "hospital" and r["named"] and r["osm_type"] == "way":
            lo, hi = 22, 36
        elif not r["named"]:
            lo, hi = 4, 10
        else:
            lo, hi = {"hospital": (10, 20), "institution": (8, 18), "home": (6, 14)}[r["care_type"]]
        caregivers = int(rng.integers(lo, hi + 1))
        if (str(r["osm_type"]), int(r["osm_id"])) == COUNTY_HOSPITAL:
            caregivers = COUNTY_HOSPITAL_CAREGIVERS
        capacity = int(round(caregivers * settings.clients_per_caregiver))
        street = r.get("addr:street") if isinstance(r.get("addr:street"), str) else None
        city = r.get("addr:city") if isinstance(r.get("addr:city"), str) else r["township"]
        phone = r.get("phone") if isinstance(r.get("phone"), str) else None
        rows.append({
            "agency_id": aid,
            "name": str(r["name"]),
            "care_type": r["care_type"],
            "status": "designated",
            "address": f"{street}, {city}" if street else f"{city} (parish only)",
            "phone": phone or f"+376 8{int(rng.integers(10, 99))} {int(rng.integers(100, 999))}",
            "photo": "",
            "certified_caregivers": caregivers,
            "capacity": capacity,
            "clients_served": int(round(capacity * rng.uniform(0.45, 0.9))),
            "quality_score": round(float(rng.uniform(72, 97)), 1),
            "leading": False,
            "service_modes": {"hospital": "hospital_ward;home_visit", "institution": "residential;day_care",
                              "home": "home_visit"}[r["care_type"]],
            "township": r["township"],
            "demo": True,
            "name_generated": not bool(r["named"]),
            "phone_from_osm": phone is not None,
            "osm_tags": json.dumps({k: r.get(k) for k in ("amenity", "healthcare", "social_facility")
                                    if isinstance(r.get(k), str)}),
            "geometry": r.geometry,
        })
    ag = gpd.GeoDataFrame(rows, crs="EPSG:4326")
    ag.attrs["left_out_off_road"] = off_road
    # Leading (龙头) agencies: the largest hospital and the largest institution.
    for kind in ("hospital", "institution"):
        sub = ag[ag["care_type"] == kind]
        if len(sub):
            ag.loc[sub["certified_caregivers"].idxmax(), "leading"] = True
    # One agency suspended, so the lifecycle shows in the demo (deterministic: the smallest home-care provider).
    home = ag[ag["care_type"] == "home"]
    if len(home) > 2:
        ag.loc[home["certified_caregivers"].idxmin(), "status"] = "suspended"
    return ag


def build(raw: Path, out: Path) -> dict:
    from geo.network import load_road_network

    out.mkdir(parents=True, exist_ok=True)
    network = load_road_network(raw / "andorra_drive.osm.bz2")
    network.save(out / "roads.npz")
    townships = build_townships(raw)
    population = build_population(raw, townships)
    units = build_units(raw, townships, population, network)
    agencies = build_agencies(raw, townships, units, network)

    for path in out.glob("*.geojson"):
        path.unlink()
    townships.to_file(out / "townships.geojson", driver="GeoJSON")
    if (out / "population.gpkg").exists():
        (out / "population.gpkg").unlink()
    population.to_file(out / "population.gpkg", driver="GPKG", layer="population")
    units.to_file(out / "units.geojson", driver="GeoJSON")
    agencies.to_file(out / "agencies.geojson", driver="GeoJSON")

    tagged = {"Andorra la Vella": 24678, "Pas de la Casa": 2996, "Sant Julià de Lòria": 9207}
    check = {n: {"osm_population_tag": v, "estimate": round(float(units.loc[units["name"] == n, "population"].sum()))}
             for n, v in tagged.items()}
    summary = {
        "name": "Andorra (demo region)",
        "attribution": "© OpenStreetMap contributors, ODbL 1.0",
        "osm_timestamp": "2025-01-19T21:21:36Z",
        "network": network.meta,
        "townships": int(len(townships)),
        "units": int(len(units)),
        "units_by_setting": units["setting"].value_counts().to_dict(),
        "merged_duplicate_places": units.attrs.get("merged_duplicates", []),
        "population_total": round(float(units["population"].sum()), 1),
        "population_buildings": int(len(population)),
        "population_buildings_levels_tagged": int(population["levels_tagged"].sum()),
        "population_check_against_osm_tags": check,
        "eligible_rate": settings.eligible_rate,
        "demand_total": round(float(units["demand"].sum()), 1),
        "agencies": int(len(agencies)),
        "agencies_left_out": {"off_road": agencies.attrs.get("left_out_off_road", []),
                              "not_care_providers": {str(k): v for k, v in EXCLUDED_FACILITIES.items()}},
        "agencies_by_type": agencies["care_type"].value_counts().to_dict(),
        "agencies_by_status": agencies["status"].value_counts().to_dict(),
        "capacity_total": int(agencies["capacity"].sum()),
        "setting_rule": {"urban_residents_500m": URBAN_RESIDENTS_500M,
                         "mountain_minutes_from_county_seat": MOUNTAIN_MINUTES_COUNTY,
                         "mountain_minutes_from_parish_seat": MOUNTAIN_MINUTES_SEAT, "mountain_ele_m": MOUNTAIN_ELE_M},
    }
    (out / "region.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=settings.demo_region_dir / "raw")
    parser.add_argument("--out", type=Path, default=settings.demo_region_dir)
    args = parser.parse_args(argv)
    if not (args.raw / "andorra-latest.osm.pbf").exists():
        raise SystemExit(f"raw extract not found in {args.raw}; pass --raw DIR")
    summary = build(args.raw, args.out)
    if args.raw.resolve() != (args.out / "raw").resolve():  # keep the inputs beside the outputs
        shutil.copytree(args.raw, args.out / "raw", dirs_exist_ok=True)
    print(json.dumps(summary, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
