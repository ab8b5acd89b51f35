"""Travel times between agencies and planning units over the road graph.

The graph is turned into compact arrays once (:mod:`geo.network`); every matrix, nearest-agency pass and
isochrone then runs in a compiled engine: ``scipy.sparse.csgraph.dijkstra`` for one-to-all and
multi-source passes, and RoutingKit's customizable contraction hierarchies for many-to-many matrices on
large graphs. Edge weights are integer milliseconds, so every engine sums the same integers and agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TravelMatrix:
    """Agencies × units travel times in minutes (float32, ``inf`` = unreachable), with both id axes kept.

    Attributes
    ----------
    minutes : np.ndarray
        Shape ``(len(agency_ids), len(unit_ids))``, door-to-door minutes including both access legs.
    agency_ids, unit_ids : np.ndarray
        The id of each row and column, as text.
    distance_km : np.ndarray or None
        Road distance along the fastest path, same shape, when computed.
    """

    minutes: np.ndarray
    agency_ids: np.ndarray
    unit_ids: np.ndarray
    distance_km: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.minutes = np.asarray(self.minutes, dtype=np.float32)
        self.agency_ids = np.asarray(self.agency_ids, dtype=object).astype(str)
        self.unit_ids = np.asarray(self.unit_ids, dtype=object).astype(str)
        if self.minutes.shape != (len(self.agency_ids), len(self.unit_ids)):
            raise ValueError(
                f"matrix shape {self.minutes.shape} does not match {len(self.agency_ids)} agencies × "
                f"{len(self.unit_ids)} units"
            )

    def subset(self, *, agency_ids=None, unit_ids=None) -> "TravelMatrix":
        """The matrix restricted to the given ids, in the given order."""
        ai = np.arange(len(self.agency_ids)) if agency_ids is None else self._positions(self.agency_ids, agency_ids)
        ui = np.arange(len(self.unit_ids)) if unit_ids is None else self._positions(self.unit_ids, unit_ids)
        dist = None if self.distance_km is None else self.distance_km[np.ix_(ai, ui)]
        return TravelMatrix(self.minutes[np.ix_(ai, ui)], self.agency_ids[ai], self.unit_ids[ui], dist, dict(self.meta))

    @staticmethod
    def _positions(axis: np.ndarray, wanted) -> np.ndarray:
        index = {v: i for i, v in enumerate(axis)}
        missing = [w for w in map(str, wanted) if w not in index]
        if missing:
            raise KeyError(f"ids not in the matrix: {missing[:5]}")
        return np.array([index[str(w)] for w in wanted], dtype=np.int64)
