"""Data contracts: the columns, codes and colours every module agrees on.

agencies (GeoDataFrame, EPSG:4326 points)
    agency_id (str), name, care_type ∈ CARE_TYPES, status ∈ STATUSES, address, phone, photo,
    certified_caregivers (int), capacity (int), clients_served (int), quality_score (float, 0–100),
    leading (bool, 龙头), service_modes (str, ';'-joined SERVICE_MODES), township, demo (bool)
units (GeoDataFrame, EPSG:4326 polygons)
    unit_id (str; a 12-digit statistical code where one exists), name, township, setting ∈ SETTINGS,
    population (float), demand (float), rep_lon, rep_lat (representative point on land near a road)
"""

from __future__ import annotations

CRS = "EPSG:4326"

#: LTCI care types and their fixed map colours (Yuyao's e-map: red / yellow / blue).
CARE_TYPES: tuple[str, ...] = ("hospital", "institution", "home")
CARE_TYPE_COLORS: dict[str, str] = {"hospital": "#d62728", "institution": "#f2c500", "home": "#1f77b4"}

#: Designation lifecycle (Heilongjiang): 定点 / 暂停 / 解除, plus 规划 for sites proposed by the siting models.
STATUSES: tuple[str, ...] = ("designated", "suspended", "terminated", "planned")
#: Statuses that count as supply in coverage and can receive new clients in allocation.
ACTIVE_STATUSES: tuple[str, ...] = ("designated", "planned")

SERVICE_MODES: tuple[str, ...] = ("home_visit", "day_care", "residential", "hospital_ward")

SETTINGS: tuple[str, ...] = ("urban", "rural", "mountain")

AGENCY_COLUMNS: tuple[str, ...] = (
    "agency_id", "name", "care_type", "status", "address", "phone", "photo", "certified_caregivers",
    "capacity", "clients_served", "quality_score", "leading", "service_modes", "township", "demo",
)
UNIT_COLUMNS: tuple[str, ...] = (
    "unit_id", "name", "township", "setting", "population", "demand", "rep_lon", "rep_lat",
)
