"""Property-based fuzzing of the FCS reader (Hypothesis): a clean read or a CikflowError.

Mutations of HEADER offsets, TEXT keyword values, and of the bytes anywhere in the file
(DATA included), applied to small valid files of every supported layout and to small
files of the real corpus. Never another exception, never a hang (each read runs under a
10 s alarm and Hypothesis's deadline), never an allocation sized by a declared count that
the file cannot hold. The long run is ``bench/fuzz_fcs.py --cases 100000``.
"""

from __future__ import annotations

import functools
import signal
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cikflow.exceptions import CikflowError
from cikflow.io import read_fcs
from cikflow.io._fcsbuild import FUZZ_OPS, FUZZ_VALUES, build_fcs, fuzz_seeds, mutate_fcs

FUZZ = settings(
    max_examples=200,
    deadline=2000,
    derandomize=True,  # the same cases in every CI run
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MUTATION = st.tuples(
    st.sampled_from(FUZZ_OPS),
    st.floats(0, 1, exclude_max=True),
    st.one_of(st.sampled_from(FUZZ_VALUES), st.binary(min_size=1, max_size=12)),
    st.integers(1, 5),
)


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    return tuple(fuzz_seeds())


class _Hung(Exception):
    pass


def _alarm(signum, frame):
    raise _Hung


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    import flowkit  # noqa: F401 - the first import takes seconds; keep it out of the deadline

    previous = signal.signal(signal.SIGALRM, _alarm)
    yield tmp_path_factory.mktemp("fuzz")
    signal.signal(signal.SIGALRM, previous)


def _check(folder: Path, raw: bytes) -> None:
    path = folder / "case.fcs"
    path.write_bytes(raw)
    signal.setitimer(signal.ITIMER_REAL, 10.0)
    try:
        fcs = read_fcs(path)
    except CikflowError:
        return
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    assert fcs.n_events >= 1
    assert fcs.events.shape == fcs.stored_events.shape == (fcs.n_events, len(fcs.pnn))
    assert fcs.sample.event_count == fcs.n_events
    # every value came from the file's bytes: no more values than bytes
    assert fcs.stored_events.size <= len(raw)


def _mutate(raw: bytes, mutations) -> bytes:
    for op, at, data, channel in mutations:
        raw = mutate_fcs(raw, op, at=at, data=data, channel=channel)
    return raw


@FUZZ
@given(
    seed=st.integers(0, len(fuzz_seeds()) - 1),
    mutations=st.lists(MUTATION, min_size=1, max_size=3),
)
def test_mutated_built_files(folder, seed, mutations):
    _check(folder, _mutate(_seeds()[seed], mutations))


@FUZZ
@given(data=st.data(), mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_corpus_files(folder, shared_data, data, mutations):
    files = sorted(
        p
        for p in (shared_data / "fcs-corpus").rglob("*")
        if p.is_file() and p.suffix != ".tsv" and p.stat().st_size < 100_000
    )
    path = data.draw(st.sampled_from(files), label="corpus file")
    _check(folder, _mutate(path.read_bytes(), mutations))


@FUZZ
@given(raw=st.binary(min_size=0, max_size=400))
def test_random_bytes_behind_a_valid_header(folder, raw):
    _check(folder, b"FCS3.1    " + raw)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("$TOT", "999999999999999"),
        ("$PAR", "99999"),
        ("$P1B", "64"),
        ("$NEXTDATA", "1"),
        ("$BEGINDATA", "18446744073709551616"),
        ("$ENDDATA", "999999999999"),
    ],
)
def test_declared_sizes_never_size_an_allocation(folder, key, value):
    """A small file that declares a huge count is refused before anything is allocated."""
    raw = build_fcs(np.arange(40).reshape(10, 4), pnn=["a", "b", "c", "d"], keywords={key: value})
    tracemalloc.start()
    try:
        _check(folder, raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{key}={value}: {peak / 2**20:.0f} MiB"
