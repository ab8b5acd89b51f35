"""Typed, user-adjustable settings shared by the whole product.

Everything a planner may want to change for their own county lives here, in one place: road speeds per
OSM ``highway`` class, the off-network access leg, the LTCI eligibility rate, caregiver ratios and the default
coverage thresholds. Modules read these values at call time (never copy them at import), so changing
``geo.settings.X`` in a session or a script takes effect everywhere.
"""

from __future__ import annotations

from pathlib import Path

#: Project root and the embedded demo region's folder.
root_dir: Path = Path(__file__).resolve().parent.parent
data_dir: Path = root_dir / "data"
demo_region_dir: Path = data_dir / "andorra"

#: Where OSMnx downloads and other caches go (created on demand).
cache_dir: Path = root_dir / "cache"

#: Free-flow car speeds (km/h) by OSM ``highway`` class, used where an edge carries no usable ``maxspeed``.
#: OSMnx's default imputes the mean of tagged edges per class, which is weak where few edges are tagged (most
#: Chinese county roads). These values follow typical Chinese design speeds (JTG B01-2014) for the class and
#: are deliberately conservative for mountain roads: a care worker's car on a hairpin road does not reach the
#: signed limit. Links take the speed of their parent class. Edit this table for another region.
highway_speeds_kph: dict[str, float] = {
    "motorway": 100.0,
    "trunk": 70.0,
    "primary": 60.0,
    "secondary": 50.0,
    "tertiary": 40.0,
    "unclassified": 30.0,
    "residential": 25.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 25.0,
    "track": 15.0,
    "busway": 30.0,
}
#: Speed for any class missing from the table above.
fallback_speed_kph: float = 25.0

#: Tagged ``maxspeed`` values above this factor times the table speed are capped: a 90 km/h limit on a
#: mountain pass says what is allowed, not what a small car achieves on it.
maxspeed_cap_factor: float = 1.6

#: Mountain penalty: edges whose steepest end lies in a ``mountain`` unit drive at this fraction of the speed.
#: Applied only where elevation data is available (not in the demo extract).
mountain_speed_factor: float = 0.8

#: The off-network access leg: from a unit's representative point or an agency's door to the nearest road
#: node, walked or driven slowly on a lane that OSM may not map (10 km/h: a slow car on an unmapped track).
access_speed_kph: float = 10.0
#: Points farther than this from any road node are flagged unreachable rather than given an invented time.
max_access_distance_m: float = 1500.0

#: Expected share of residents who are LTCI-eligible (severely disabled). Kunming's pilot: 1.55万 beneficiaries
#: among 198万 insured = 0.78%.
eligible_rate: float = 0.0078

#: Clients one certified caregiver can serve in home care; capacity = certified_caregivers × this value
#: where an agency gives no explicit capacity.
clients_per_caregiver: float = 4.0

#: Coverage thresholds in minutes.
coverage_thresholds_min: tuple[float, ...] = (15.0, 30.0, 45.0, 60.0)

#: Grid requests larger than this many cells are refused.
max_grid_cells: int = 1_000_000

#: Graphs with at least this many nodes use contraction hierarchies for many-to-many matrices (the build takes
#: 0.1 s on the demo network and is cached on disk; below this size scipy is as fast).
cch_min_nodes: int = 2_000
