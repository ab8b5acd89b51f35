"""Suite-wide set-up: no test ever touches a real workspace."""

from __future__ import annotations

import os

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
