"""Which planning units touch: the graph that contiguity constraints and districting walk on.

Units are adjacent when their polygons share a border (``rook``) or at least a point (``queen``). Neighbours
are found with one vectorised Shapely ``STRtree`` query in a local metric CRS, so a small snapping tolerance
(in metres) absorbs the slivers that digitised village boundaries always carry. Units without any neighbour
(islands, exclaves) are reported, because contiguity constraints treat them by an explicit exception rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from geo.errors import InputError, Problem

RULES: tuple[str, ...] = ("rook", "queen")


@dataclass
class UnitAdjacency:
    """A symmetric unit adjacency graph with the unit id of every row.

    Attributes
    ----------
    unit_ids : np.ndarray
        Unit id of each row/column, as text, in the order of the units given.
    matrix : scipy.sparse.csr_matrix
        Boolean, symmetric, no self loops: ``matrix[i, j]`` is True when units ``i`` and ``j`` are adjacent.
    rule : str
        ``"rook"`` (shared border) or ``"queen"`` (shared point).
    """

    unit_ids: np.ndarray
    matrix: sp.csr_matrix
    rule: str = "rook"

    def __post_init__(self) -> None:
        self.unit_ids = np.asarray(self.unit_ids, dtype=object).astype(str)
        m = sp.csr_matrix(self.matrix, dtype=bool)
        m = (m + m.T).tocsr()
        m.setdiag(False)
        m.eliminate_zeros()
        self.matrix = m
        self._position = {u: i for i, u in enumerate(self.unit_ids)}

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    @property
    def degree(self) -> np.ndarray:
        return np.diff(self.matrix.indptr)

    @property
    def islands(self) -> list[str]:
        """Units with no neighbour at all."""
        return self.unit_ids[self.degree == 0].tolist()

    def neighbours(self, unit_id: str) -> list[str]:
        i = self._position[str(unit_id)]
        return self.unit_ids[self.matrix.indices[self.matrix.indptr[i]:self.matrix.indptr[i + 1]]].tolist()

    def position(self, unit_ids) -> np.ndarray:
        """Row positions of the given unit ids (KeyError naming the unknown ones)."""
        missing = [u for u in map(str, unit_ids) if u not in self._position]
        if missing:
            raise KeyError(f"unit ids not in the adjacency: {missing[:5]}")
        return np.array([self._position[str(u)] for u in unit_ids], dtype=np.int64)

    def components(self) -> np.ndarray:
        """Connected-component label of every unit."""
        return connected_components(self.matrix, directed=False)[1]

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Both directions of every adjacency, as (tail, head) position arrays."""
        coo = self.matrix.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64)

    def reorder(self, unit_ids) -> "UnitAdjacency":
        """The same graph with rows in the given unit order."""
        pos = self.position(unit_ids)
        return UnitAdjacency(self.unit_ids[pos], self.matrix[pos][:, pos], self.rule)

    def to_frame(self) -> pd.DataFrame:
        """One row per undirected adjacency: ``unit_id``, ``neighbour_id``."""
        tail, head = self.edges()
        keep = tail < head
        return pd.DataFrame({"unit_id": self.unit_ids[tail[keep]], "neighbour_id": self.unit_ids[head[keep]]})


def build_adjacency(
    units,
    *,
    rule: str = "rook",
    id_column: str = "unit_id",
    tolerance_m: float = 1.0,
    min_shared_border_m: float | None = None,
) -> UnitAdjacency:
    """Build the adjacency graph of unit polygons.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Unit polygons with an id column; any CRS with a definition (projected to a local UTM zone).
    rule : str
        ``"rook"``: adjacent when the borders share a length of at least ``min_shared_border_m``;
        ``"queen"``: adjacent when they come within ``tolerance_m`` of each other (a shared corner counts).
    id_column : str
        Column holding the unit id.
    tolerance_m : float
        Gap in metres still treated as touching (digitising slivers).
    min_shared_border_m : float, optional
        Shared border length for ``rook``; default ``2 * tolerance_m + 1`` so a corner touch never counts.

    Returns
    -------
    UnitAdjacency
    """
    import shapely

    _validate_units(units, rule=rule, id_column=id_column, tolerance_m=tolerance_m)
    ids = units[id_column].astype(str).to_numpy()
    metric = units.to_crs(units.estimate_utm_crs()) if units.crs.is_geographic else units
    geoms = shapely.make_valid(metric.geometry.to_numpy())
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=float(tolerance_m))
    keep = left < right
    left, right = left[keep], right[keep]
    if rule == "rook" and len(left):
        need = (2.0 * tolerance_m + 1.0) if min_shared_border_m is None else float(min_shared_border_m)
        # A shared border is the part of one boundary lying within the tolerance of the other polygon.
        near = shapely.buffer(geoms[right], max(tolerance_m, 1e-6))
        shared = shapely.length(shapely.intersection(shapely.boundary(geoms[left]), near))
        keep = shared >= need
        left, right = left[keep], right[keep]
    n = len(ids)
    matrix = sp.coo_matrix((np.ones(len(left), dtype=bool), (left, right)), shape=(n, n)).tocsr()
    return UnitAdjacency(ids, matrix, rule)


def _validate_units(units, *, rule: str, id_column: str, tolerance_m: float) -> None:
    problems: list[Problem] = []
    if rule not in RULES:
        problems.append(Problem(f"rule must be one of {RULES}, got {rule!r}", column="rule", value=rule))
    if tolerance_m < 0:
        problems.append(Problem("tolerance_m must be ≥ 0", column="tolerance_m", value=tolerance_m))
    if id_column not in units.columns:
        problems.append(Problem(f"units have no {id_column!r} column", column=id_column))
    else:
        dup = units[id_column].astype(str).duplicated(keep=False)
        for row in np.flatnonzero(dup.to_numpy()):
            problems.append(Problem("duplicate unit id", row=int(row) + 1, column=id_column,
                                    value=units[id_column].iloc[row]))
    if getattr(units, "crs", None) is None:
        problems.append(Problem("units have no CRS; set it (EPSG:4326) before building adjacency"))
    geom = units.geometry
    empty = (geom.isna() | geom.is_empty).to_numpy()
    for row in np.flatnonzero(empty):
        problems.append(Problem("unit has no polygon", row=int(row) + 1, column="geometry"))
    if problems:
        raise InputError("cannot build unit adjacency", problems)
