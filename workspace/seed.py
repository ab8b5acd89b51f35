"""Seeding a new workspace from a region folder (the demo region in ``data/andorra`` by default).

``open_demo_workspace()`` is what the app calls on start: it opens the demo workspace, creating it from the
region folder the first time only; after that the file is the bureau's and is never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd

from geo import settings
from geo.errors import InputError, Problem
from workspace.store import WorkspaceStore, open_workspace

#: Environment variable that points the app at another workspace file or a PostgreSQL URL.
WORKSPACE_ENV = "LTCI_WORKSPACE"


def default_workspace_location() -> str:
    """``$LTCI_WORKSPACE`` if set, else ``<project>/workspaces/demo-andorra.gpkg`` (kept out of ``data/``)."""
    return os.environ.get(WORKSPACE_ENV) or str(settings.root_dir / "workspaces" / "demo-andorra.gpkg")


def _read_layer(path: Path, key: str) -> gpd.GeoDataFrame:
    frame = gpd.read_file(path)
    # Ids are codes, not numbers: a 12-digit village code read as an integer would lose leading zeros.
    frame[key] = [None if v is None else str(v) for v in frame[key]]
    return frame


def seed_from_region_folder(folder: str | Path | None = None) -> Callable[[WorkspaceStore], None]:
    """A ``seed_from`` callable that loads ``agencies.geojson``, ``units.geojson`` and ``region.json``.

    Parameters
    ----------
    folder : str or Path, optional
        A region folder as written by ``geo.build_region``; defaults to the demo region.
    """
    folder = Path(folder or settings.demo_region_dir)

    def seed(store: WorkspaceStore) -> None:
        missing = [n for n in ("agencies.geojson", "units.geojson") if not (folder / n).exists()]
        if missing:
            raise InputError(f"cannot create the workspace from {folder}",
                             [Problem(f"missing {n}; run `make region`") for n in missing])
        store.replace_agencies(_read_layer(folder / "agencies.geojson", "agency_id"),
                               source=str(folder / "agencies.geojson"))
        store.replace_units(_read_layer(folder / "units.geojson", "unit_id"), source=str(folder / "units.geojson"))
        region = json.loads((folder / "region.json").read_text()) if (folder / "region.json").exists() else {}
        store.set_region_meta({"name": region.get("name", folder.name), "region": region,
                               "seeded_from": str(folder)})

    return seed


def open_demo_workspace(location: str | Path | None = None, *, folder: str | Path | None = None) -> WorkspaceStore:
    """Open the app's workspace, creating it from the region folder on first start (never overwriting it)."""
    return open_workspace(location or default_workspace_location(), seed_from=seed_from_region_folder(folder))
