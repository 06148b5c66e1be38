from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cikflow.exceptions import SampleSheetError
from cikflow.io import write_fcs, write_table
from cikflow.io.samplesheet import (
    COLUMNS,
    DEFAULT_PATTERN,
    read_sample_sheet,
    sanitize_id,
    scan_folder,
    validate_rows,
)
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fcs-corpus"

HEADER = "sample\tbatch\tday\tfcs\tweight_kg\tculture_volume_mL\tbeads_per_tube\tsample_volume_uL"
ROW_D00 = "B01_d00\tB01\t0\tB01_d00.fcs\t70.5\t15.3\t50000\t100"
ROW_D07 = "B01_d07\tB01\t7\tB01_d07.fcs\t70.5\t86.2\t50000\t100"


def sheet_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "samples.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def valid_lines() -> list[str]:
    """Line 1 comment, line 2 header, line 3 B01_d00, line 4 B01_d07."""
    return ["# CIK culture B01", HEADER, ROW_D00, ROW_D07]


def with_row4(**cells: str) -> list[str]:
    """The valid sheet with cells of line 4 (sample B01_d07) replaced."""
    names = HEADER.split("\t")
    values = dict(zip(names, ROW_D07.split("\t"), strict=True))
    values.update(cells)
    return [*valid_lines()[:3], "\t".join(values[n] for n in names)]


def with_header(header: str, row: str) -> list[str]:
    return ["# CIK culture B01", header, row]


def tiny_events(n: int = 50) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.uniform(0, 1000, size=(n, 3))


def write_tiny_fcs(path: Path, keywords: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_fcs(
        path,
        tiny_events(),
        pnn=["FSC-A", "SSC-A", "FITC-A"],
        pns=["", "", "CD3"],
        keywords=keywords,
    )


# --------------------------------------------------------------------------- reading


def test_valid_sheet_types_and_defaults(tmp_path: Path) -> None:
    lines = valid_lines()
    lines[1] += "\tlabel"
    lines[2] += "\tday 0, thawed"
    lines[3] += "\t"
    sheet = read_sample_sheet(sheet_file(tmp_path, *lines))

    assert list(sheet.columns) == list(COLUMNS)
    assert sheet["sample"].tolist() == ["B01_d00", "B01_d07"]
    assert sheet["day"].dtype == np.int64
    assert sheet["day"].tolist() == [0, 7]
    for column in (
        "weight_kg",
        "culture_volume_mL",
        "beads_per_tube",
        "sample_volume_uL",
        "viable_cells_per_uL",
        "dilution",
    ):
        assert sheet[column].dtype == np.float64, column
    for column in ("sample", "batch", "fcs", "label"):
        assert sheet[column].map(type).eq(str).all(), column
    assert sheet["viable_cells_per_uL"].isna().all()
    assert sheet["dilution"].tolist() == [1.0, 1.0]
    assert sheet["label"].tolist() == ["day 0, thawed", ""]
    assert sheet["culture_volume_mL"].tolist() == [15.3, 86.2]


def test_valid_sheet_round_trips_through_write_table(tmp_path: Path) -> None:
    first = read_sample_sheet(sheet_file(tmp_path, *valid_lines()))
    write_table(first, tmp_path / "again.tsv")
    second = read_sample_sheet(tmp_path / "again.tsv")
    pd.testing.assert_frame_equal(first, second)


def test_simulated_sheet_is_valid(tmp_path: Path) -> None:
    written = write_simulated(simulate_batches(n_batches=1, days=(0, 7), n_events=500), tmp_path)
    assert validate_rows(written) == []
    sheet = read_sample_sheet(tmp_path / "samples.tsv", base_dir=tmp_path)
    assert sheet["day"].tolist() == [0, 7]
    assert all(Path(f).is_file() for f in sheet["fcs"])


def test_empty_optional_cells_and_na_tokens(tmp_path: Path) -> None:
    path = sheet_file(
        tmp_path, *with_row4(weight_kg="", beads_per_tube="NA", sample_volume_uL="  ")
    )
    sheet = read_sample_sheet(path)
    row = sheet.iloc[1]
    assert np.isnan(row["weight_kg"])
    assert np.isnan(row["beads_per_tube"])
    assert np.isnan(row["sample_volume_uL"])


def test_integral_floats_are_integers(tmp_path: Path) -> None:
    sheet = read_sample_sheet(sheet_file(tmp_path, *with_row4(day="7.0", beads_per_tube="5e4")))
    assert sheet["day"].tolist() == [0, 7]
    assert sheet["beads_per_tube"].tolist() == [50000.0, 50000.0]


def test_base_dir_joins_relative_paths(tmp_path: Path) -> None:
    lines = with_row4(fcs="/data/abs.fcs")
    sheet = read_sample_sheet(sheet_file(tmp_path, *lines), base_dir="runs/r1")
    assert sheet["fcs"].tolist() == [str(Path("runs/r1/B01_d00.fcs")), "/data/abs.fcs"]


def test_crlf_bom_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "samples.tsv"
    text = "\r\n".join(["# comment", "", HEADER, ROW_D00, "", ROW_D07]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_sample_sheet(path)["sample"].tolist() == ["B01_d00", "B01_d07"]


# (sheet lines, fragments the error message must contain)
BAD_SHEETS = [
    pytest.param(
        with_row4(day="seven"),
        ["line 4", "B01_d07", "column 'day'", "'seven' is not an integer"],
        id="non-integer-day",
    ),
    pytest.param(
        with_row4(day="7.5"),
        ["line 4", "B01_d07", "column 'day'", "not an integer"],
        id="fractional-day",
    ),
    pytest.param(
        with_row4(day="-1"), ["line 4", "B01_d07", "column 'day'", ">= 0"], id="negative-day"
    ),
    pytest.param(
        with_row4(weight_kg="-70"),
        ["line 4", "B01_d07", "column 'weight_kg'", "> 0"],
        id="negative-weight",
    ),
    pytest.param(
        with_row4(weight_kg="70kg"),
        ["line 4", "B01_d07", "column 'weight_kg'", "'70kg' is not a number"],
        id="weight-with-unit",
    ),
    pytest.param(
        with_row4(sample_volume_uL="0"),
        ["line 4", "B01_d07", "column 'sample_volume_uL'", "> 0"],
        id="zero-volume",
    ),
    pytest.param(
        with_row4(beads_per_tube="50000.5"),
        ["line 4", "B01_d07", "column 'beads_per_tube'", "not an integer"],
        id="fractional-beads",
    ),
    pytest.param(
        with_row4(sample="B01 d07!"),
        ["line 4", "B01 d07!", "column 'sample'", "not a valid ID"],
        id="bad-sample-id",
    ),
    pytest.param(
        with_row4(batch="_B01"),
        ["line 4", "B01_d07", "column 'batch'", "not a valid ID"],
        id="bad-batch-id",
    ),
    pytest.param(
        with_row4(sample="B01_d00"),
        ["line 4", "B01_d00", "column 'sample'", "duplicate", "line 3"],
        id="duplicate-sample",
    ),
    pytest.param(
        with_row4(sample="b01_D00"),
        ["line 4", "b01_D00", "column 'sample'", "case", "line 3"],
        id="duplicate-sample-but-case",
    ),
    pytest.param(
        with_row4(batch=""), ["line 4", "B01_d07", "column 'batch'", "empty"], id="empty-batch"
    ),
    pytest.param(with_row4(day=""), ["line 4", "B01_d07", "column 'day'", "empty"], id="empty-day"),
    pytest.param(with_row4(fcs=""), ["line 4", "B01_d07", "column 'fcs'", "empty"], id="empty-fcs"),
    pytest.param(
        with_row4(sample=""),
        ["line 4", "no sample ID", "column 'sample'", "empty"],
        id="empty-sample",
    ),
    pytest.param(
        [*valid_lines(), ROW_D07.replace("d07", "d14") + "\textra"],
        ["line 5", "B01_d14", "extra", "header has 8 columns"],
        id="extra-cell",
    ),
    pytest.param(
        with_header(HEADER + "\tnotes", ROW_D00 + "\tthawed"),
        ["line 2", "column 'notes'", "unknown column"],
        id="unknown-column",
    ),
    pytest.param(
        with_header(HEADER.replace("\tday\t", "\tDay\t"), ROW_D00),
        [
            "line 2",
            "column 'Day'",
            "did you mean 'day'",
            "column 'day'",
            "required column is missing",
        ],
        id="miscased-column",
    ),
    pytest.param(
        with_header(HEADER.replace("\tfcs", ""), ROW_D00.replace("\tB01_d00.fcs", "")),
        ["line 2", "column 'fcs'", "required column is missing"],
        id="missing-required-column",
    ),
    pytest.param(
        with_header(HEADER + "\tbatch", ROW_D00 + "\tB01"),
        ["line 2", "column 'batch'", "more than once"],
        id="duplicate-column",
    ),
]


@pytest.mark.parametrize(("lines", "fragments"), BAD_SHEETS)
def test_bad_sheet_names_line_sample_and_column(
    tmp_path: Path, lines: list[str], fragments: list[str]
) -> None:
    path = sheet_file(tmp_path, *lines)
    with pytest.raises(SampleSheetError) as info:
        read_sample_sheet(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_message_format_matches_the_documented_example(tmp_path: Path) -> None:
    lines = with_row4(day="seven")
    with pytest.raises(SampleSheetError) as info:
        read_sample_sheet(sheet_file(tmp_path, *lines))
    assert str(info.value) == (
        f"{tmp_path / 'samples.tsv'} line 4 (sample B01_d07): "
        "column 'day': 'seven' is not an integer"
    )


def test_every_bad_row_is_reported(tmp_path: Path) -> None:
    lines = [*with_row4(day="seven"), ROW_D07.replace("d07", "d14").replace("70.5", "-1")]
    with pytest.raises(SampleSheetError) as info:
        read_sample_sheet(sheet_file(tmp_path, *lines))
    reported = str(info.value).splitlines()
    assert len(reported) == 2
    assert "line 4 (sample B01_d07): column 'day'" in reported[0]
    assert "line 5 (sample B01_d14): column 'weight_kg'" in reported[1]


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        pytest.param([], "no header", id="empty-file"),
        pytest.param(["# only a comment"], "no header", id="only-comments"),
        pytest.param(["# comment", HEADER], "no samples", id="header-only"),
    ],
)
def test_sheet_without_rows(tmp_path: Path, lines: list[str], fragment: str) -> None:
    path = tmp_path / "samples.tsv"
    path.write_text("\n".join(lines))
    with pytest.raises(SampleSheetError, match=fragment):
        read_sample_sheet(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SampleSheetError, match="not found"):
        read_sample_sheet(tmp_path / "nope.tsv")


def test_validate_rows_on_a_dataframe() -> None:
    table = pd.DataFrame(
        {
            "sample": ["a1", "a2"],
            "batch": ["A", "A"],
            "day": [0.0, np.nan],
            "fcs": ["a1.fcs", "a2.fcs"],
            "weight_kg": [70.0, -3.0],
        }
    )
    problems = validate_rows(table, source="table")
    assert [(p.row, p.column) for p in problems] == [(1, "day"), (1, "weight_kg")]
    assert str(problems[0]) == "table row 2 (sample a2): column 'day': empty; a value is required"


# --------------------------------------------------------------------------- scanning


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("B01_d07", ("B01", "07"), id="B01_d07"),
        pytest.param("PT3-day14", ("PT3", "14"), id="PT3-day14"),
        pytest.param("CIK_B2_D0", ("B2", "0"), id="CIK_B2_D0"),
        pytest.param("2024-01-05_B01_d07_tube2", ("B01", "07"), id="date-prefix-and-suffix"),
        pytest.param("P7 Day 21", ("P7", "21"), id="spaces"),
        pytest.param("Specimen_001_A1_A01", None, id="no-day-token"),
        pytest.param("test_data_2d_01", None, id="digit-before-d"),
        pytest.param("data1", None, id="plain-name"),
    ],
)
def test_default_pattern(name: str, expected: tuple[str, str] | None) -> None:
    match = re.search(DEFAULT_PATTERN, name)
    assert (None if match is None else (match["batch"], match["day"])) == expected


def test_sanitize_id() -> None:
    assert sanitize_id("Compensation Controls_Blue B") == "Compensation_Controls_Blue_B"
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", sanitize_id("._é#1"))


def test_scan_simulated_files_skips_garbage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "run"
    write_simulated(simulate_batches(n_batches=1, days=(0, 7), n_events=500), folder)
    garbage = folder / "garbage.fcs"
    garbage.write_bytes(np.random.default_rng(7).bytes(10))

    with caplog.at_level(logging.WARNING, logger="cikflow.io.samplesheet"):
        sheet = scan_folder(folder)

    assert sheet["sample"].tolist() == ["B01_d00", "B01_d07"]
    assert sheet["batch"].tolist() == ["B01", "B01"]
    assert sheet["day"].tolist() == [0, 7]
    assert sheet["fcs"].tolist() == [
        (folder / "B01_d00.fcs").as_posix(),
        (folder / "B01_d07.fcs").as_posix(),
    ]
    assert list(sheet.columns) == list(COLUMNS)
    skipped = [r for r in caplog.records if "garbage.fcs" in r.getMessage()]
    assert len(skipped) == 1
    assert skipped[0].levelno == logging.WARNING
    assert "skipped" in skipped[0].getMessage()


def test_scan_truncated_fcs_reports_the_fcsparser_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tiny_fcs(tmp_path / "src" / "A_d1.fcs")
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "A_d1.fcs").write_bytes((tmp_path / "src" / "A_d1.fcs").read_bytes()[:80])
    with caplog.at_level(logging.WARNING, logger="cikflow.io.samplesheet"):
        sheet = scan_folder(tmp_path / "scan")
    assert sheet.empty
    assert list(sheet.columns) == list(COLUMNS)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "A_d1.fcs: skipped" in message
    assert "ValueError" in message


def test_scan_names_keywords_and_fallbacks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tiny_fcs(tmp_path / "PT3-day14.fcs")
    write_tiny_fcs(tmp_path / "sub" / "CIK_B2_D0.FCS")
    write_tiny_fcs(tmp_path / "sub" / "tube 5.fcs", {"CIKFLOW_BATCH": "B9", "CIKFLOW_DAY": "21"})
    write_tiny_fcs(tmp_path / "sub" / "tube_6.fcs", {"$SRC": "Patient 4"})
    write_tiny_fcs(tmp_path / "unknown.fcs")
    write_tiny_fcs(tmp_path / ".hidden" / "X_d1.fcs")
    (tmp_path / "notes.txt").write_text("not an fcs file")

    with caplog.at_level(logging.WARNING, logger="cikflow.io.samplesheet"):
        sheet = scan_folder(tmp_path, defaults={"beads_per_tube": 50000, "sample_volume_uL": 100})

    by_sample = sheet.set_index("sample")
    assert sorted(by_sample.index) == ["CIK_B2_D0", "PT3-day14", "tube_5", "tube_6", "unknown"]
    assert by_sample.loc["PT3-day14", ["batch", "day"]].tolist() == ["PT3", 14]
    assert by_sample.loc["CIK_B2_D0", ["batch", "day"]].tolist() == ["B2", 0]
    assert by_sample.loc["tube_5", ["batch", "day"]].tolist() == ["B9", 21]
    assert by_sample.loc["tube_6", "batch"] == "Patient_4"
    assert pd.isna(by_sample.loc["tube_6", "day"])
    assert by_sample.loc["unknown", "batch"] == ""
    assert pd.isna(by_sample.loc["unknown", "day"])
    assert str(sheet["day"].dtype) == "Int64"
    assert sheet["beads_per_tube"].eq(50000.0).all()
    assert sheet["sample_volume_uL"].eq(100.0).all()
    assert sheet["weight_kg"].isna().all()

    warned = {r.getMessage().split(":")[0] for r in caplog.records}
    assert str(tmp_path / "unknown.fcs") in warned
    assert str(tmp_path / "sub" / "tube_6.fcs") in warned
    assert str(tmp_path / "PT3-day14.fcs") not in warned


def test_scan_then_fill_then_read(tmp_path: Path) -> None:
    write_simulated(simulate_batches(n_batches=1, days=(0, 7), n_events=500), tmp_path / "run")
    draft = scan_folder(tmp_path / "run", defaults={"weight_kg": 80, "label": "draft"})
    write_table(draft, tmp_path / "samples.tsv")
    sheet = read_sample_sheet(tmp_path / "samples.tsv")
    assert sheet["day"].tolist() == [0, 7]
    assert sheet["weight_kg"].tolist() == [80.0, 80.0]
    assert sheet["label"].tolist() == ["draft", "draft"]


def test_scan_unique_sample_ids(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_tiny_fcs(tmp_path / "a" / "B01_d07.fcs")
    write_tiny_fcs(tmp_path / "b" / "B01_d07.fcs")
    with caplog.at_level(logging.WARNING, logger="cikflow.io.samplesheet"):
        sheet = scan_folder(tmp_path)
    assert sheet["sample"].tolist() == ["B01_d07", "B01_d07_2"]
    assert validate_rows(sheet) == []
    assert any("B01_d07_2" in r.getMessage() for r in caplog.records)


def test_scan_custom_pattern_with_sample_group(tmp_path: Path) -> None:
    write_tiny_fcs(tmp_path / "run1 - donor7 - D03 - tube A.fcs")
    pattern = r"donor(?P<batch>\d+) - D(?P<day>\d+) - tube (?P<sample>\w+)"
    sheet = scan_folder(tmp_path, pattern=pattern)
    assert sheet[["sample", "batch", "day"]].iloc[0].tolist() == ["A", "7", 3]


def test_scan_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="named groups"):
        scan_folder(tmp_path, pattern=r"(?P<batch>\w+)")
    with pytest.raises(ValueError, match="fcs"):
        scan_folder(tmp_path, defaults={"fcs": "x.fcs"})
    with pytest.raises(SampleSheetError, match="not a folder"):
        scan_folder(tmp_path / "missing")


@pytest.mark.skipif(
    not (CORPUS / "whitews_FlowIO").is_dir(), reason="no FCS corpus beside the repo"
)
def test_scan_real_files_including_big_endian(caplog: pytest.LogCaptureFixture) -> None:
    import fcsparser

    folder = CORPUS / "whitews_FlowIO"
    readable, byteorders = [], set()
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() != ".fcs":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # real files; the oddities are not under test
                meta = fcsparser.parse(path, meta_data_only=True, reformat_meta=False)
        except Exception:  # unreadable: scan_folder must skip it too
            continue
        readable.append(path.as_posix())
        byteorders.add(meta.get("$BYTEORD"))
    assert "4,3,2,1" in byteorders, "the corpus should hold a big-endian file"

    with caplog.at_level(logging.WARNING):
        sheet = scan_folder(folder)

    assert sorted(sheet["fcs"]) == sorted(readable)
    assert sheet["sample"].is_unique
    assert sheet["sample"].str.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*").all()


def test_each_empty_required_column_is_named_once() -> None:
    table = pd.DataFrame({"sample": ["a1"], "batch": [None], "day": [None], "fcs": ["a1.fcs"]})
    assert [str(p) for p in validate_rows(table, source="demo")] == [
        "demo row 1 (sample a1): column 'batch': empty; a value is required",
        "demo row 1 (sample a1): column 'day': empty; a value is required",
    ]
