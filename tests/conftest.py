"""Shared pytest fixtures: paths of the repository and of the third-party data beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]
#: real third-party data (see its PROVENANCE.md); lives beside the repo, never inside it
SHARED_DATA = REPO_DIR.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    """Return the cikflow repository root."""
    return REPO_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return ``../shared/data`` beside the repository; skip the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data absent: {SHARED_DATA} not found")
    return SHARED_DATA
