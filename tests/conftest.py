"""Shared pytest fixtures and the test tiers.

Plain ``pytest`` runs the fast tier; tests marked ``slow`` (the Snakemake workflow run end
to end, minutes each) are skipped with a reason unless ``--run-slow`` is given, as CI does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]
#: real third-party data (see its PROVENANCE.md); lives beside the repo, never inside it
SHARED_DATA = REPO_DIR.parent / "shared" / "data"
SLOW_REASON = "slow workflow test: run with pytest --run-slow (CI does)"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--run-slow``: also run the tests marked ``slow``."""
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run the slow tests (the Snakemake workflow end to end; CI runs them)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``slow`` unless ``--run-slow`` was given."""
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason=SLOW_REASON)
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
