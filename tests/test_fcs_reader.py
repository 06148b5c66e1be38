"""The FCS reader on files built byte for byte: every layout it reads, every defect it names."""

from __future__ import annotations

import numpy as np
import pytest

from cikflow.exceptions import (
    FcsDataError,
    FcsHeaderError,
    FcsNotFoundError,
    FcsOffsetError,
    FcsReadError,
    FcsTextError,
    FcsTruncatedError,
    FcsUnsupportedError,
)
from cikflow.io import read_fcs, select_events, write_fcs
from cikflow.io._fcsbuild import build_fcs

PNN = ["FSC-A", "SSC-A", "FL1-A", "Time"]


@pytest.fixture
def values():
    rng = np.random.default_rng(11)
    return rng.integers(0, 2**16, size=(200, 4)).astype(np.int64)


def _write(tmp_path, raw, name="x.fcs"):
    path = tmp_path / name
    path.write_bytes(raw)
    return path


LAYOUTS = [
    pytest.param({"bits": 16, "byteord": "1,2,3,4"}, id="int16-little"),
    pytest.param({"bits": 16, "byteord": "4,3,2,1"}, id="int16-big"),
    pytest.param({"bits": 16, "byteord": "2,1"}, id="int16-big-fcs2-order"),
    pytest.param({"bits": 24, "byteord": "1,2,3,4"}, id="int24-little"),
    pytest.param({"bits": 24, "byteord": "4,3,2,1"}, id="int24-big"),
    pytest.param({"bits": [16, 24, 32, 8], "byteord": "4,3,2,1"}, id="mixed-big"),
    pytest.param({"bits": [8, 16, 24, 64], "byteord": "1,2,3,4"}, id="mixed-little"),
    pytest.param({"bits": 32, "byteord": "3,4,1,2"}, id="int32-permuted"),
    pytest.param({"bits": 32, "byteord": "1,2,3,4", "version": "2.0"}, id="fcs2"),
    pytest.param({"bits": 16, "version": "2.0", "text_offsets": False}, id="fcs2-header-only"),
    pytest.param({"bits": 16, "header_offsets": False}, id="text-offsets-only"),
    pytest.param({"bits": 16, "delimiter": b"\x0c"}, id="formfeed-delimiter"),
]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_integer_layouts_round_trip_exactly(tmp_path, values, layout):
    bits = layout["bits"]
    widths = [bits] * 4 if isinstance(bits, int) else bits
    expected = np.column_stack([values[:, j] % 2 ** min(widths[j], 62) for j in range(4)])
    fcs = read_fcs(_write(tmp_path, build_fcs(expected, pnn=PNN, **layout)))
    np.testing.assert_array_equal(fcs.stored_events, expected.astype(np.float64))
    np.testing.assert_array_equal(fcs.events, fcs.sample.get_events(source="raw"))
    assert fcs.warnings == ()


@pytest.mark.parametrize(
    ("datatype", "bits", "byteord"),
    [("F", 32, "1,2,3,4"), ("F", 32, "4,3,2,1"), ("F", 32, "2,1,4,3"), ("D", 64, "4,3,2,1")],
    ids=["float-little", "float-big", "float-permuted", "double-big"],
)
def test_float_layouts_round_trip_exactly(tmp_path, values, datatype, bits, byteord):
    data = values / 7.0
    if datatype == "F":
        data = data.astype(np.float32)
    raw = build_fcs(data, pnn=PNN, datatype=datatype, bits=bits, byteord=byteord)
    fcs = read_fcs(_write(tmp_path, raw))
    np.testing.assert_array_equal(fcs.stored_events, data.astype(np.float64))


def test_integers_are_masked_to_the_bits_of_their_range(tmp_path):
    data = np.array([[0xFFFF, 0x1234, 1500, 7], [0x0400, 0xFFFF, 2047, 8]])
    raw = build_fcs(data, pnn=PNN, bits=16, pnr=[1024, 65536, 1500, 1])
    fcs = read_fcs(_write(tmp_path, raw))
    # 1024 keeps 10 bits; 1500 rounds up to 2048 (11 bits); 1 keeps none (as flowio, fcsparser)
    expected = [[0x03FF, 0x1234, 1500, 0], [0, 0xFFFF, 2047, 0]]
    np.testing.assert_array_equal(fcs.stored_events, expected)


def test_write_fcs_round_trip_and_preprocessing(tmp_path):
    events = np.array([[1.5, 2.0, 300.0, 100.0], [4.0, 5.0, 600.0, 250.0]], dtype=np.float32)
    path = tmp_path / "w.fcs"
    write_fcs(path, events, pnn=PNN, pns=["", "", "CD3", ""], keywords={"$TIMESTEP": "0.01"})
    fcs = read_fcs(path)
    np.testing.assert_array_equal(fcs.stored_events, events)
    np.testing.assert_allclose(fcs.events[:, 3], [1.0, 2.5])  # Time in seconds
    assert fcs.pns == ["", "", "CD3", ""]
    assert fcs.time_index == 3
    np.testing.assert_array_equal(fcs.ranges, [262144.0] * 4)


def test_gain_and_log_decoding_follow_flowkit(tmp_path):
    data = np.array([[100, 512, 1023, 5]])
    raw = build_fcs(
        data,
        pnn=PNN,
        bits=16,
        pnr=[1024] * 4,
        keywords={"$P1G": "4", "$P2E": "4,0", "$P3E": "4.0,0.1", "$P4G": "2", "$TIMESTEP": "0.5"},
    )
    fcs = read_fcs(_write(tmp_path, raw))
    expected = [25.0, 10 ** (4 * 512 / 1024), 10 ** (4 * 1023 / 1024) * 0.1, 2.5]
    np.testing.assert_allclose(fcs.events[0], expected, rtol=1e-12)


def test_escaped_delimiters_and_empty_values_in_text(tmp_path, values):
    raw = build_fcs(values, pnn=PNN, keywords={"$CYT": "a/b//c", "$SRC": "x"})
    assert b"/$CYT/a//b////c/" in raw
    assert read_fcs(_write(tmp_path, raw)).keywords["cyt"] == "a/b//c"
    # writers that store an empty value as two delimiters in a row (FCS 2.0 era)
    raw = build_fcs(values, pnn=PNN, keywords={"$SRC": "", "$CYT": "x", "$COM": ""})
    assert b"/$SRC//$CYT/x/$COM//" in raw
    fcs = read_fcs(_write(tmp_path, raw, "e.fcs"))
    assert (fcs.keywords["src"], fcs.keywords["cyt"], fcs.keywords["com"]) == ("", "x", "")
    np.testing.assert_array_equal(fcs.stored_events, values)


def test_off_by_one_end_is_repaired_or_refused(tmp_path, values):
    path = _write(tmp_path, build_fcs(values, pnn=PNN, end_error=1) + b"\x00")
    fcs = read_fcs(path)
    np.testing.assert_array_equal(fcs.stored_events, values)
    assert len(fcs.warnings) == 1
    assert "$ENDDATA is off by one" in fcs.warnings[0]
    with pytest.raises(FcsOffsetError, match=r"x\.fcs: \$ENDDATA is off by one"):
        read_fcs(path, strict=True)


def test_select_events_rebuilds_the_flowkit_sample(tmp_path, values):
    fcs = read_fcs(_write(tmp_path, build_fcs(values, pnn=PNN, keywords={"$TIMESTEP": "0.1"})))
    keep = np.arange(fcs.n_events) % 3 != 0
    kept = select_events(fcs, keep)
    assert kept.n_events == kept.sample.event_count == int(keep.sum())
    np.testing.assert_array_equal(kept.events, fcs.events[keep])
    np.testing.assert_array_equal(kept.sample.get_events(source="raw"), fcs.events[keep])
    np.testing.assert_array_equal(kept.stored_events, fcs.stored_events[keep])
    assert (kept.sha256, kept.keywords, kept.sample.id) == (fcs.sha256, fcs.keywords, fcs.sample.id)
    with pytest.raises(ValueError, match="one boolean per event"):
        select_events(fcs, keep[:-1])


def test_fc500_list_mode_ten_bits_in_sixteen_bit_words(tmp_path):
    # Beckman Coulter Cytomics FC500 .LMD: FCS 2.0, $PnB 10, $PnR 1024, 2-byte words
    # ($BYTEORD 1,2); the bits above the 10th are not part of the value
    words = np.array([[0, 1023, 1024, 0xFFFF], [5, 0x0405, 0xFC11, 512], [1000, 0x8000, 3, 0x83FF]])
    raw = build_fcs(words, pnn=["FS", "SS", "FL1", "FL2"], bits=10, byteord="1,2", version="2.0")
    assert b"/$P1B/10/" in raw
    assert b"/$P1R/1024/" in raw
    assert len(raw) - raw.index(b"\x00\x00\xff\x03") == 3 * 4 * 2  # 16-bit words
    path = _write(tmp_path, raw, "tube.LMD")
    fcs = read_fcs(path)
    expected = [[0, 1023, 0, 1023], [5, 5, 17, 512], [1000, 0, 3, 1023]]
    np.testing.assert_array_equal(fcs.stored_events, np.array(expected, dtype=np.float64))
    np.testing.assert_array_equal(fcs.sample.get_events(source="raw"), expected)
    assert fcs.warnings == (
        "$PnB is not a whole number of bytes for parameters 1–4 (e.g. $P1B=10); read as "
        "16-bit words (the width of $BYTEORD 1,2), values masked to their $PnR",
    )
    with pytest.raises(FcsUnsupportedError, match=r"tube\.LMD: \$PnB is not a whole number"):
        read_fcs(path, strict=True)


def test_parameter_without_pnn_gets_a_generated_name(tmp_path, values):
    raw = build_fcs(values, pnn=["FSC-A", None, "P4", None], keywords={"$P3S": "CD3"})
    assert b"$P2N" not in raw
    assert b"$P4N" not in raw
    path = _write(tmp_path, raw)
    fcs = read_fcs(path)
    assert fcs.pnn == ["FSC-A", "P2", "P4", "P4_"]
    assert fcs.pns == ["", "", "CD3", ""]
    assert list(fcs.sample.pnn_labels) == ["FSC-A", "P2", "P4", "P4_"]
    np.testing.assert_array_equal(fcs.stored_events, values)
    assert fcs.warnings == ("$PnN is missing for parameters 2, 4; named 'P2', 'P4_'",)
    with pytest.raises(FcsTextError, match=r"x\.fcs: \$PnN is missing for parameters 2, 4"):
        read_fcs(path, strict=True)


# --- defects: each a named error that names the file ---------------------------------------------


def _rewrite_keyword(raw: bytes, key: bytes, value: bytes) -> bytes:
    """Change a keyword's value in place, keeping the length (pads with spaces)."""
    i = raw.index(b"/" + key + b"/") + len(key) + 2
    j = raw.index(b"/", i)
    assert len(value) <= j - i, (key, value)
    return raw[:i] + value.ljust(j - i) + raw[j:]


def _with_keyword(values, key, value, **layout):
    return build_fcs(values, pnn=PNN, keywords={key: value}, **layout)


DEFECTS = [
    ("empty", lambda v: b"", FcsHeaderError, "not an FCS file"),
    ("csv", lambda v: b"a,b,c\n" * 20, FcsHeaderError, "not an FCS file"),
    ("html", lambda v: b"<html><head></head>" * 5, FcsHeaderError, "not an FCS file"),
    ("header-only", lambda v: build_fcs(v, pnn=PNN)[:58], FcsTruncatedError, "TEXT segment"),
    ("version", lambda v: b"FCS9.9" + build_fcs(v, pnn=PNN)[6:], FcsUnsupportedError, "'9.9'"),
    (
        "text-offsets",
        lambda v: build_fcs(v, pnn=PNN)[:10] + b"    abcd" + build_fcs(v, pnn=PNN)[18:],
        FcsHeaderError,
        "no valid TEXT segment offsets",
    ),
    (
        "truncated",
        lambda v: build_fcs(v, pnn=PNN)[:-7],
        FcsTruncatedError,
        "greater than file size",
    ),
    ("ascii", lambda v: _with_keyword(v, "$DATATYPE", "A"), FcsUnsupportedError, "ASCII"),
    ("histogram", lambda v: _with_keyword(v, "$MODE", "C"), FcsUnsupportedError, "$MODE C"),
    ("bits", lambda v: _with_keyword(v, "$P2B", "72"), FcsUnsupportedError, "$P2B='72'"),
    (
        "bits-wider-than-word",
        lambda v: _with_keyword(v, "$P2B", "10", byteord="1"),
        FcsUnsupportedError,
        "words as wide as $BYTEORD (1 byte(s))",
    ),
    (
        "no-pnb",
        lambda v: build_fcs(v, pnn=[*PNN[:3], None], keywords={"$P4B": " "}),
        FcsTextError,
        "$P4B is missing",
    ),
    (
        "float-bits",
        lambda v: _with_keyword(v, "$P2B", "16", datatype="F", bits=32),
        FcsTextError,
        "$P2B='16'",
    ),
    ("no-par", lambda v: _with_keyword(v, "$PAR", " "), FcsTextError, "$PAR is missing"),
    ("par", lambda v: _with_keyword(v, "$PAR", "4x"), FcsTextError, "$PAR is '4x'"),
    ("par-huge", lambda v: _with_keyword(v, "$PAR", "99999999"), FcsTextError, "$PAR=99999999"),
    ("pnr", lambda v: _with_keyword(v, "$P3R", "wide"), FcsTextError, "$P3R is 'wide'"),
    ("byteord", lambda v: _with_keyword(v, "$BYTEORD", "1,1"), FcsTextError, "$BYTEORD '1,1'"),
    ("tot-zero", lambda v: _with_keyword(v, "$TOT", "0"), FcsDataError, "no events"),
    (
        "tot-huge",
        lambda v: _with_keyword(v, "$TOT", "99999999999999999"),
        FcsTruncatedError,
        "greater than file size",
    ),
    (
        "tot-more-than-data",
        lambda v: _with_keyword(v, "$TOT", "210") + b"\x00" * 400,
        FcsDataError,
        "$TOT=210",
    ),
]


@pytest.mark.parametrize(
    ("make", "error", "text"), [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS]
)
def test_defects_raise_named_errors(tmp_path, values, make, error, text):
    path = _write(tmp_path, make(values), "bad file.fcs")
    with pytest.raises(error) as info:
        read_fcs(path)
    assert isinstance(info.value, FcsReadError)
    assert str(info.value).startswith("bad file.fcs: ")
    assert text in str(info.value)


def test_data_offsets_into_text_are_refused(tmp_path, values):
    raw = build_fcs(values, pnn=PNN)
    raw = raw[:26] + f"{300:>8d}".encode() + raw[34:]  # HEADER DATA start inside TEXT
    raw = _rewrite_keyword(raw, b"$BEGINDATA", b"300")
    with pytest.raises(FcsOffsetError, match="point into the HEADER or TEXT"):
        read_fcs(_write(tmp_path, raw))


def test_missing_file(tmp_path):
    with pytest.raises(FcsNotFoundError, match="file not found"):
        read_fcs(tmp_path / "nowhere.fcs")
    with pytest.raises(FcsNotFoundError):
        read_fcs(tmp_path)  # a folder


def test_inspect_prints_one_line_per_file_and_never_a_traceback(tmp_path, values, capsys):
    from cikflow.cli import main

    good = _write(tmp_path, build_fcs(values, pnn=PNN), "good.fcs")
    repaired = _write(tmp_path, build_fcs(values, pnn=PNN, end_error=1) + b"\x00", "one-off.fcs")
    text = _write(tmp_path, b"sample,CD3\n1,2\n", "text.fcs")
    assert main(["inspect", str(good), str(repaired)]) == 0
    assert main(["inspect", str(good), str(text), str(tmp_path / "gone.fcs")]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{good}\tok 200x4"
    assert out[1].startswith(f"{repaired}\tok 200x4\t1 warning(s): $ENDDATA is off by one")
    assert out[3].startswith(f"{text}\tFcsHeaderError: text.fcs: not an FCS file")
    assert out[4].startswith(f"{tmp_path / 'gone.fcs'}\tFcsNotFoundError: ")
    assert main(["inspect", "--strict", str(repaired)]) == 2
    assert "FcsOffsetError" in capsys.readouterr().out
