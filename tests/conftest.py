"""Suite-wide set-up: no test ever touches a real workspace."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _temporary_workspace(tmp_path_factory):
    """Point the default workspace at a temp file for the whole run. Autouse session fixtures run before the
    browser tests' server fixture, so the servers they start inherit it too."""
    previous = os.environ.get("LTCI_WORKSPACE")
    os.environ["LTCI_WORKSPACE"] = str(tmp_path_factory.mktemp("workspace") / "test-workspace.gpkg")
    yield
    if previous is None:
        os.environ.pop("LTCI_WORKSPACE", None)
    else:
        os.environ["LTCI_WORKSPACE"] = previous


@pytest.fixture(scope="session")
def seeded(tmp_path_factory) -> Path:
    """A demo workspace seeded once from data/, copied by :func:`workspace_path` for each test."""
    from workspace.seed import open_demo_workspace

    path = tmp_path_factory.mktemp("seed") / "seed.gpkg"
    open_demo_workspace(path).close()
    return path


@pytest.fixture()
def workspace_path(seeded, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the seeded demo workspace as the app's workspace, with no planner login configured."""
    path = tmp_path / "workspace.gpkg"
    shutil.copy(seeded, path)
    monkeypatch.setenv("LTCI_WORKSPACE", str(path))
    monkeypatch.delenv("LTCI_PLANNER_PASSWORD_HASH", raising=False)
    monkeypatch.delenv("LTCI_PLANNER_USER", raising=False)
    return path
