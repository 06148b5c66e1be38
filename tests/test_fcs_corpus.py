"""The FCS reader on 50 real files from 7 projects (``../shared/data/fcs-corpus``).

Every file that flowio 1.4, fcsparser or flowkit 1.3 reads (MANIFEST.tsv) must be read,
with event values identical to theirs; files no reference reads are read where they are
valid FCS (24-bit integers, blank HEADER offsets, $ENDDATA off by one) and checked against
digests of fcsparser 0.2.8's decoding (``tests/data/fcs_corpus_reference.tsv``); the rest
are rejected with a named error.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest

from cikflow.exceptions import (
    CikflowError,
    FcsHeaderError,
    FcsOffsetError,
    FcsTruncatedError,
)
from cikflow.io import read_fcs

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fcs-corpus"
DIGESTS = Path(__file__).resolve().parent / "data" / "fcs_corpus_reference.tsv"

#: files no reference reads and that are not FCS files or miss DATA bytes
REJECTED = {
    "eyurtsev_fcsparser/fcsparser/tests/data/FlowCytometers/corrupted/corrupted.fcs": (
        FcsHeaderError,
        "not an FCS file",
    ),
    "tlnagy_FCSFiles.jl/test/testdata/testFCS2.fcs": (FcsHeaderError, "not an FCS file"),
    "eyurtsev_fcsparser/fcsparser/tests/data/FlowCytometers/cytek-nl-2000/sample_header.fcs": (
        FcsTruncatedError,
        "greater than file size (3931 bytes)",
    ),
    "laminlabs_readfcs/readfcs/datasets/example.fcs": (
        FcsTruncatedError,
        "greater than file size (4165935 bytes)",
    ),
}
#: HEADER says DATA starts inside TEXT; fcsparser follows it and decodes TEXT bytes as
#: events. The TEXT offsets hold exactly $TOT events: the values of the file it was made from.
START_DISCREPANCY = "whitews_FlowIO/data/fcs_files/data_start_offset_discrepancy_example.fcs"
ORIGINAL = "whitews_FlowIO/data/fcs_files/variable_int_example.fcs"


def _manifest() -> list[dict[str, str]]:
    path = CORPUS / "MANIFEST.tsv"
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _params(condition=lambda row: True):
    return [pytest.param(r, id=r["path"].split("/")[-1]) for r in _manifest() if condition(r)]


def _ok(row: dict[str, str], reader: str) -> bool:
    return row[f"{reader}_read"].startswith("ok")


def _digests() -> dict[str, tuple[int, int, str]]:
    rows = [ln.split("\t") for ln in DIGESTS.read_text().splitlines() if not ln.startswith("#")]
    return {r[0]: (int(r[1]), int(r[2]), r[3]) for r in rows[1:]}


def _sha(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).astype("<f8").tobytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> Path:
    folder = shared_data / "fcs-corpus"
    if not (folder / "MANIFEST.tsv").is_file():
        pytest.skip("fcs-corpus absent")
    return folder


@pytest.mark.parametrize("row", _params())
def test_every_file_is_read_or_rejected_by_name(corpus, row):
    path = corpus / row["path"]
    if row["path"] in REJECTED:
        error, text = REJECTED[row["path"]]
        with pytest.raises(error) as info:
            read_fcs(path)
        assert path.name in str(info.value)
        assert text in str(info.value)
        return
    fcs = read_fcs(path)
    shape = (int(row["n_events"]), int(row["n_channels"]))
    assert fcs.events.shape == shape
    assert fcs.stored_events.shape == shape
    assert fcs.sample.event_count == shape[0]
    assert len(fcs.pnn) == len(fcs.pns) == shape[1]
    assert fcs.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_file_a_reference_reads_is_read(corpus):
    rows = [r for r in _manifest() if any(_ok(r, k) for k in ("flowio", "fcsparser", "flowkit"))]
    assert len(rows) == 36
    for row in rows:
        read_fcs(corpus / row["path"])  # raises if not


@pytest.mark.parametrize("row", _params(lambda r: _ok(r, "flowio")))
def test_values_identical_to_flowio(corpus, row):
    import flowio

    path = corpus / row["path"]
    reference = flowio.FlowData(path)
    expected = np.asarray(reference.events, dtype=np.float64).reshape(-1, reference.channel_count)
    np.testing.assert_array_equal(read_fcs(path).stored_events, expected)


@pytest.mark.parametrize("row", _params(lambda r: _ok(r, "fcsparser")))
def test_values_identical_to_fcsparser(corpus, row):
    import fcsparser

    path = corpus / row["path"]
    with warnings.catch_warnings():  # fcsparser warns about ANALYSIS segments etc.
        warnings.simplefilter("ignore")
        _, data = fcsparser.parse(str(path), reformat_meta=True)
    expected = data.to_numpy(dtype=np.float64)
    got = read_fcs(path).stored_events
    if row["path"] == START_DISCREPANCY:
        assert not np.array_equal(got, expected)  # fcsparser read TEXT bytes as events
        np.testing.assert_array_equal(got, read_fcs(corpus / ORIGINAL).stored_events)
        return
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("row", _params(lambda r: _ok(r, "flowkit")))
def test_events_identical_to_flowkit(corpus, row):
    """What gating sees is unchanged: flowkit's preprocessed events, labels and version."""
    import flowkit

    path = corpus / row["path"]
    reference = flowkit.Sample(path)
    fcs = read_fcs(path)
    np.testing.assert_array_equal(fcs.events, reference.get_events(source="raw"))
    assert fcs.pnn == list(reference.pnn_labels)
    assert fcs.sample.version == reference.version
    assert fcs.sample.fluoro_indices == reference.fluoro_indices
    assert fcs.sample.scatter_indices == reference.scatter_indices
    assert fcs.sample.time_index == reference.time_index


@pytest.mark.parametrize(
    "row",
    _params(lambda r: "off by 1" in r["flowio_read"] and "multiple" not in r["flowio_read"]),
)
def test_off_by_one_files_equal_flowio_lenient_reading(corpus, row):
    import flowkit

    path = corpus / row["path"]
    fcs = read_fcs(path)
    assert any("$ENDDATA is off by one" in w for w in fcs.warnings), fcs.warnings
    with pytest.warns(UserWarning, match="incorrect data offset"):
        reference = flowkit.Sample(path, ignore_offset_error=True)
    np.testing.assert_array_equal(fcs.events, reference.get_events(source="raw"))
    with pytest.raises(FcsOffsetError, match="off by one"):
        read_fcs(path, strict=True)


def test_values_match_fcsparser_028_digests(corpus):
    """Files no in-process reference reads, against fcsparser 0.2.8 + numpy 1.26."""
    digests = _digests()
    assert len(digests) == 46
    matched = []
    for rel, (n_events, n_channels, digest) in digests.items():
        fcs = read_fcs(corpus / rel)
        assert fcs.stored_events.shape == (n_events, n_channels), rel
        if rel == START_DISCREPANCY:
            assert _sha(fcs.stored_events) != digest
            continue
        assert _sha(fcs.stored_events) == digest, rel
        matched.append(rel)
    assert len(matched) == 45
    for rel in ("Cytek_xP5.fcs", "fake_large_fcs.fcs", "Data003.fcs", "BD_Accuri_C6.fcs"):
        assert any(m.endswith(rel) for m in matched)


@pytest.mark.parametrize(
    ("name", "count"),
    [("coulter.lmd", 2), ("ADM_09SEP2020_181310.VIA.FCS", 2)],
)
def test_first_of_several_data_sets_with_a_warning(corpus, name, count):
    path = next(corpus.rglob(name))
    fcs = read_fcs(path)
    assert fcs.data_sets == count
    skipped = f"holds {count} data sets; read the first, skipped {count - 1}"
    assert any(skipped in w for w in fcs.warnings)
    with pytest.raises(CikflowError):
        read_fcs(path, strict=True)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("data_start_offset_discrepancy_example.fcs", "HEADER gives bytes 5555–6188"),
        ("data_stop_offset_discrepancy_example.fcs", "HEADER gives bytes 6081–6944"),
    ],
)
def test_offset_discrepancy_is_repaired_with_a_warning(corpus, name, text):
    fcs = read_fcs(corpus / "whitews_FlowIO" / "data" / "fcs_files" / name)
    assert any(text in w and "TEXT gives 6081–6188" in w for w in fcs.warnings)
    np.testing.assert_array_equal(fcs.stored_events, read_fcs(corpus / ORIGINAL).stored_events)
    with pytest.raises(FcsOffsetError, match="disagree"):
        read_fcs(corpus / "whitews_FlowIO" / "data" / "fcs_files" / name, strict=True)


def test_24_bit_integers_both_files_and_masks(corpus):
    fcs = read_fcs(next(corpus.rglob("Cytek_xP5.fcs")))
    assert fcs.keywords["p1b"] == "24"
    assert fcs.keywords["byteord"] == "4,3,2,1"
    # $PnR 1024 (10 bits) on the fluorescence channels: values masked below 1024
    assert fcs.stored_events[:, 3:].max() < 1024
    assert fcs.stored_events[:, 3:].max() > 500
    assert not fcs.warnings


def test_clean_files_read_without_warnings(corpus):
    clean = [r for r in _manifest() if _ok(r, "flowio") and "malformed" not in r["notes"]]
    assert len(clean) >= 25
    noisy = {r["path"]: read_fcs(corpus / r["path"]).warnings for r in clean}
    noisy = {k: v for k, v in noisy.items() if v}
    # variable_int_example's $TIMESTEP is 'xxxxxxxxx' (flowkit refuses the file for it)
    assert list(noisy) == [ORIGINAL]
    assert "$TIMESTEP 'xxxxxxxxx' is not a number" in noisy[ORIGINAL][0]


def test_flowkit_gates_a_file_only_cikflow_reads(corpus):
    """24-bit Cytek xP5 data (no reference reads it) gated by flowkit through FcsData.sample."""
    import flowkit as fk

    fcs = read_fcs(next(corpus.rglob("Cytek_xP5.fcs")))
    strategy = fk.GatingStrategy()
    dims = [fk.Dimension("FSC", range_min=200, range_max=800), fk.Dimension("SSC", range_max=600)]
    strategy.add_gate(fk.gates.RectangleGate("box", dims), gate_path=("root",))
    result = strategy.gate_sample(fcs.sample)
    fsc, ssc = fcs.events[:, fcs.pnn.index("FSC")], fcs.events[:, fcs.pnn.index("SSC")]
    expected = int(((fsc >= 200) & (fsc < 800) & (ssc < 600)).sum())
    assert 1000 < expected < fcs.n_events
    assert result.get_gate_count("box") == expected
