"""Shared pytest fixtures and the test tiers.

Plain ``pytest`` runs the fast tier; tests marked ``slow`` (the Snakemake workflow run end
to end, minutes each) are skipped with a reason unless ``--run-slow`` is given, as CI does.
"""

from __future__ import annotations

import re
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


def _job_stats(stderr: str) -> dict[str, int]:
    """Rule -> job count from Snakemake's "Job stats" table (without ``total``)."""
    table = stderr.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)
        if m.group(1) != "total"
    }


@pytest.fixture(scope="session")
def job_stats():
    """Read a Snakemake run's "Job stats" table: ``job_stats(stderr)`` -> rule -> jobs."""
    return _job_stats
