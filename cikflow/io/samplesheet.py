"""The sample sheet: one row per FCS file, validated against ``samples.schema.yaml``.

A sample sheet is a tab-separated table with a header line. Lines starting with
``#`` and blank lines are ignored, so a sheet can carry comments. The columns are
(see ``cikflow/schemas/samples.schema.yaml``):

``sample``, ``batch``, ``day``, ``fcs`` (required), ``weight_kg``,
``culture_volume_mL``, ``beads_per_tube``, ``sample_volume_uL``,
``viable_cells_per_uL``, ``dilution`` (default 1), ``harvest_day``,
``infused_fraction``, ``infused_volume_mL`` and ``label`` (default "").

:func:`read_sample_sheet` reads and validates a sheet; every problem is reported
with the file, the line (as a text editor numbers it), the sample ID and the
column. :func:`scan_folder` drafts a sheet from a folder of FCS files.
"""

from __future__ import annotations

import csv
import difflib
import functools
import logging
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from cikflow.exceptions import SampleSheetError
from cikflow.io.keywords import read_keywords

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "COLUMNS",
    "DEFAULT_PATTERN",
    "REQUIRED_COLUMNS",
    "SheetProblem",
    "read_sample_sheet",
    "sanitize_id",
    "scan_folder",
    "validate_rows",
]

log = logging.getLogger(__name__)

#: every column of a sample sheet, in the standard order
COLUMNS: tuple[str, ...] = (
    "sample",
    "batch",
    "day",
    "fcs",
    "weight_kg",
    "culture_volume_mL",
    "beads_per_tube",
    "sample_volume_uL",
    "viable_cells_per_uL",
    "dilution",
    "harvest_day",
    "infused_fraction",
    "infused_volume_mL",
    "label",
)
#: columns a sheet must have, with a value in every row
REQUIRED_COLUMNS: tuple[str, ...] = ("sample", "batch", "day", "fcs")
#: integer columns (``day`` is never empty; ``beads_per_tube`` may be)
INTEGER_COLUMNS: frozenset[str] = frozenset({"day", "beads_per_tube", "harvest_day"})
#: real-valued columns (may be empty)
NUMBER_COLUMNS: frozenset[str] = frozenset(
    {
        "weight_kg",
        "culture_volume_mL",
        "sample_volume_uL",
        "viable_cells_per_uL",
        "dilution",
        "infused_fraction",
        "infused_volume_mL",
    }
)
#: text cells read as empty in numeric columns (spreadsheets write these for "no value")
NA_TOKENS: frozenset[str] = frozenset({"NA", "N/A", "NaN", "nan", "null", "None"})
#: the ID pattern of ``sample`` and ``batch``
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Default file-name pattern of :func:`scan_folder`, matched (``re.search``) against
#: the file name without its ``.fcs`` suffix, case-insensitively. The day token is
#: ``d`` or ``day``, an optional separator and 1-4 digits (``d07``, ``D0``,
#: ``day14``, ``Day_3``); the batch is the letters-and-digits token right before it,
#: separated by ``_``, ``-``, ``.`` or a space. Anything before the batch token
#: (a ``CIK_`` prefix, a date) and anything after the day token (``_CD3stain``) is
#: ignored. So ``B01_d07`` → batch ``B01``, day 7; ``PT3-day14`` → ``PT3``, 14;
#: ``CIK_B2_D0`` → ``B2``, 0; ``2024-01-05_B01_d07_tube2`` → ``B01``, 7. A batch
#: name that itself contains a separator (``PT_3``) keeps only its last token
#: (``3``): pass your own pattern then.
DEFAULT_PATTERN: str = (
    r"(?i)^(?:.*[_. -])?(?P<batch>[A-Za-z0-9]+)[_. -]+(?:day|d)[_. -]?(?P<day>\d{1,4})"
    r"(?:[_. -].*)?$"
)

_MAX_REPORTED = 20


@dataclass(frozen=True)
class SheetProblem:
    """One problem of a sample sheet.

    Attributes
    ----------
    source : str
        The sheet (file name, or a description of an in-memory table).
    message : str
        What is wrong.
    column : str or None
        The column at fault, if one is.
    row : int or None
        0-based row of the table (None for a header problem).
    line : int or None
        1-based line of the file (None for an in-memory table).
    sample : str or None
        The row's sample ID as written, if readable.
    """

    source: str
    message: str
    column: str | None = None
    row: int | None = None
    line: int | None = None
    sample: str | None = None

    def __str__(self) -> str:
        if self.line is not None:
            where = f"{self.source} line {self.line}"
        elif self.row is not None:
            where = f"{self.source} row {self.row + 1}"
        else:
            where = self.source
        if self.row is None:
            where += " (header)" if self.line is not None else ""
        elif self.sample:
            where += f" (sample {self.sample})"
        else:
            where += " (no sample ID)"
        column = f": column '{self.column}'" if self.column is not None else ""
        return f"{where}{column}: {self.message}"


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("cikflow").joinpath("schemas/samples.schema.yaml").read_text()
    return yaml.safe_load(text)


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(_schema())


class _Missing:
    """Marker of an empty cell."""

    def __repr__(self) -> str:
        return "<empty>"


_MISSING = _Missing()


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return isinstance(value, str) and not value.strip()


def _parse_int(text: str) -> int | str:
    """Parse an integer (``7``, ``07``, ``7.0``, ``5e4``); return other text unchanged."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number.is_integer():
        return int(number)
    return text


def _parse_float(text: str) -> float | str:
    """Parse a finite number; return other text unchanged."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _coerce(column: str, value: Any) -> Any:
    """Cell → the python value validated by the schema, or ``_MISSING``.

    Text that is not a valid number stays text, so the schema reports it.
    """
    if _is_missing(value):
        return _MISSING
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        text = value.strip()
        if column in INTEGER_COLUMNS or column in NUMBER_COLUMNS:
            if text in NA_TOKENS:
                return _MISSING
            return _parse_int(text) if column in INTEGER_COLUMNS else _parse_float(text)
        return text
    if column in INTEGER_COLUMNS and isinstance(value, float) and value.is_integer():
        return int(value)
    if column not in INTEGER_COLUMNS and column not in NUMBER_COLUMNS and column in COLUMNS:
        return str(value)
    return value


def _show(value: Any) -> str:
    """Show a cell as written, for messages."""
    if isinstance(value, str):
        return repr(value.strip())
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _describe(error: Any, cells: Mapping[str, Any]) -> tuple[str | None, str]:
    """(column, message) of a jsonschema error about one row.

    A ``required`` error is about one property (jsonschema raises one per missing
    property, each carrying the whole list), named in its message.
    """
    kind = error.validator
    if kind == "required":
        missing = [c for c in error.validator_value if c not in error.instance]
        named = [c for c in missing if error.message.startswith(f"{c!r} ")]
        column = named[0] if named else (missing[0] if missing else None)
        return column, "empty; a value is required"
    path = list(error.absolute_path)
    column = str(path[0]) if path else None
    raw = _show(cells.get(column, error.instance)) if column is not None else repr(error.instance)
    if kind == "type":
        if column in INTEGER_COLUMNS:
            return column, f"{raw} is not an integer"
        if column in NUMBER_COLUMNS:
            return column, f"{raw} is not a number"
        return column, f"{raw} is not text"
    if kind == "minimum":
        return column, f"must be >= {error.validator_value}, not {raw}"
    if kind == "exclusiveMinimum":
        return column, f"must be > {error.validator_value}, not {raw}"
    if kind == "maximum":
        return column, f"must be <= {error.validator_value}, not {raw}"
    if kind == "pattern":
        return column, (
            f"{raw} is not a valid ID (use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit)"
        )
    if kind == "minLength":
        return column, "empty; a value is required"
    if kind == "additionalProperties":
        return None, error.message
    return column, error.message


def _column_problems(
    columns: Sequence[Any], *, source: str, header_line: int | None
) -> list[SheetProblem]:
    """Duplicate, unknown and missing required columns."""
    problems: list[SheetProblem] = []
    names = [str(c) for c in columns]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(
                SheetProblem(source, "column appears more than once", column=name, line=header_line)
            )
        seen.add(name)
    for name in dict.fromkeys(names):
        if name in COLUMNS:
            continue
        hint = difflib.get_close_matches(name, COLUMNS, n=1, cutoff=0.6)
        hint += [c for c in COLUMNS if c.lower() == name.strip().lower() and c not in hint]
        message = "unknown column" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        message += f"; allowed columns: {', '.join(COLUMNS)}"
        problems.append(SheetProblem(source, message, column=name, line=header_line))
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            problems.append(
                SheetProblem(source, "required column is missing", column=name, line=header_line)
            )
    return problems


def validate_rows(
    sheet: pd.DataFrame,
    *,
    source: str = "sample sheet",
    lines: Sequence[int] | None = None,
    header_line: int | None = None,
) -> list[SheetProblem]:
    """Every problem of a sample-sheet table; an empty list if it is valid.

    Checks the columns (unknown, duplicated, required ones missing), then each row
    against ``samples.schema.yaml`` (cells may be text, as read from a file, or
    numbers; empty cells, None and NaN are empty), then that sample IDs are unique
    (also ignoring case: output files are named by sample). Does not check that
    FCS files exist.

    Parameters
    ----------
    sheet : pandas.DataFrame
        The table, one row per sample.
    source : str
        Name of the sheet in messages (the file name).
    lines : sequence of int, optional
        1-based file line of each row, for messages; default: row numbers.
    header_line : int, optional
        1-based file line of the header, for column problems.

    Returns
    -------
    list of SheetProblem
        Column problems only, if there are any (rows are not checked then);
        else the row problems in row order.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"sample": ["a1", "a 2"], "batch": ["A", "A"],
    ...                       "day": ["0", "seven"], "fcs": ["a1.fcs", "a2.fcs"]})
    >>> for problem in validate_rows(table, source="demo"):
    ...     print(problem)
    demo row 2 (sample a 2): column 'sample': 'a 2' is not a valid ID (use letters, digits, '_', '.' and '-', starting with a letter or digit)
    demo row 2 (sample a 2): column 'day': 'seven' is not an integer
    """  # noqa: E501
    problems = _column_problems(list(sheet.columns), source=source, header_line=header_line)
    if problems:
        return problems
    if lines is not None and len(lines) != len(sheet):
        msg = f"lines has {len(lines)} entries for {len(sheet)} rows"
        raise ValueError(msg)
    order = {name: i for i, name in enumerate(COLUMNS)}
    first_seen: dict[str, tuple[str, int]] = {}
    for i, cells in enumerate(sheet.to_dict("records")):
        cells = {str(k): v for k, v in cells.items()}
        line = None if lines is None else int(lines[i])
        sample_cell = cells.get("sample")
        sample = None if _is_missing(sample_cell) else str(sample_cell).strip()
        record = {}
        for column, value in cells.items():
            coerced = _coerce(column, value)
            if coerced is not _MISSING:
                record[column] = coerced
        found = []
        for error in _validator().iter_errors(record):
            column, message = _describe(error, cells)
            found.append((order.get(column or "", len(order)), column, message))
        for _, column, message in sorted(found, key=lambda f: f[0]):
            problems.append(SheetProblem(source, message, column, i, line, sample))
        if sample is not None:
            key = sample.casefold()
            where = "line" if line is not None else "row"
            here = line if line is not None else i + 1
            if key in first_seen:
                other, other_at = first_seen[key]
                if other == sample:
                    message = f"duplicate sample ID (also on {where} {other_at})"
                else:
                    message = (
                        f"sample ID differs only in case from '{other}' on {where} {other_at} "
                        "(output files would collide on case-insensitive file systems)"
                    )
                problems.append(SheetProblem(source, message, "sample", i, line, sample))
            else:
                first_seen[key] = (sample, here)
    return problems


def _raise(problems: Sequence[SheetProblem]) -> None:
    shown = [str(p) for p in problems[:_MAX_REPORTED]]
    if len(problems) > _MAX_REPORTED:
        shown.append(f"... and {len(problems) - _MAX_REPORTED} more problems")
    raise SampleSheetError("\n".join(shown))


def _typed(sheet: pd.DataFrame) -> pd.DataFrame:
    """Give a validated table clean dtypes and every column, in the standard order."""
    n = len(sheet)
    out: dict[str, pd.Series] = {}
    for column in COLUMNS:
        values = sheet[column].tolist() if column in sheet.columns else [None] * n
        coerced = [_coerce(column, v) for v in values]
        if column == "day":
            out[column] = pd.Series(coerced, dtype="int64")
        elif column in INTEGER_COLUMNS or column in NUMBER_COLUMNS:
            series = pd.Series(
                [np.nan if v is _MISSING else float(v) for v in coerced], dtype="float64"
            )
            out[column] = series.fillna(1.0) if column == "dilution" else series
        else:
            out[column] = pd.Series(
                ["" if v is _MISSING else str(v) for v in coerced], dtype=object
            )
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def _split(line: str) -> list[str]:
    """Cells of one tab-separated line (quoted cells as pandas writes them)."""
    return [cell.strip() for cell in next(csv.reader([line], delimiter="\t"))]


def _parse_lines(
    text: str, *, source: str
) -> tuple[list[str] | None, int, list[list[str]], list[int], list[SheetProblem]]:
    """Split a sheet's text into its header and rows, skipping blank and comment lines.

    Returns the header (None if there is no line), its line number, the rows (padded
    or cut to the header's width), their line numbers, and the problems met.
    """
    header: list[str] | None = None
    header_line = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[SheetProblem] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        if not raw_line.strip() or raw_line.lstrip().startswith("#"):
            continue
        try:
            cells = _split(raw_line)
        except csv.Error as exc:
            problems.append(SheetProblem(source, f"cannot split the line ({exc})", line=number))
            continue
        if header is None:
            while cells and not cells[-1]:
                cells.pop()
            header, header_line = cells, number
            continue
        if len(cells) > len(header):
            extra = [c for c in cells[len(header) :] if c]
            if extra:
                problems.append(
                    SheetProblem(
                        source,
                        f"{len(cells)} cells but the header has {len(header)} columns "
                        f"(extra: {', '.join(map(repr, extra))})",
                        row=len(rows),
                        line=number,
                        sample=cells[header.index("sample")] if "sample" in header else None,
                    )
                )
            cells = cells[: len(header)]
        rows.append(cells + [""] * (len(header) - len(cells)))
        lines.append(number)
    return header, header_line, rows, lines, problems


def read_sample_sheet(path: str | Path, *, base_dir: str | Path | None = None) -> pd.DataFrame:
    r"""Read and validate a sample sheet.

    Parameters
    ----------
    path : str or pathlib.Path
        Tab-separated sheet with a header line; ``#`` comment lines and blank lines
        are skipped, cells are stripped of surrounding spaces. In numeric columns
        ``NA``, ``N/A``, ``NaN`` and ``null`` count as empty.
    base_dir : str or pathlib.Path, optional
        Directory that relative ``fcs`` paths are relative to; default: leave them
        as written (relative to the working directory).

    Returns
    -------
    pandas.DataFrame
        One row per sample with every column of :data:`COLUMNS` in that order:
        ``day`` int64; ``weight_kg``, ``culture_volume_mL``, ``beads_per_tube``,
        ``sample_volume_uL``, ``viable_cells_per_uL``, ``dilution`` float64
        (NaN where empty; ``dilution`` defaults to 1.0); ``sample``, ``batch``,
        ``fcs``, ``label`` str (``label`` defaults to "").

    Raises
    ------
    SampleSheetError
        The file is missing or not text, has no header or no rows, has unknown,
        duplicated or missing required columns, or a row breaks the schema or
        repeats a sample ID. Each message line names the file, the line, the
        sample and the column, e.g. ``samples.tsv line 4 (sample B01_d07):
        column 'day': 'seven' is not an integer``. FCS files are not checked.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sheet_path = Path(tmp) / "samples.tsv"
    ...     _ = sheet_path.write_text(
    ...         "# CIK batch B01\n"
    ...         "sample\tbatch\tday\tfcs\tbeads_per_tube\n"
    ...         "B01_d07\tB01\t7\tB01_d07.fcs\t50000\n"
    ...     )
    ...     sheet = read_sample_sheet(sheet_path)
    >>> sheet[["sample", "day", "beads_per_tube", "dilution"]]
        sample  day  beads_per_tube  dilution
    0  B01_d07    7         50000.0       1.0
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SampleSheetError(f"{source}: file not found") from None
    except UnicodeDecodeError as exc:
        raise SampleSheetError(f"{source}: not UTF-8 text ({exc})") from None
    except OSError as exc:
        raise SampleSheetError(f"{source}: cannot read ({exc})") from None

    header, header_line, rows, lines, problems = _parse_lines(text, source=source)
    if header is None:
        raise SampleSheetError(f"{source}: no header line (the file is empty or all comments)")
    empty_names = [i + 1 for i, name in enumerate(header) if not name]
    if empty_names:
        raise SampleSheetError(
            f"{source} line {header_line} (header): column(s) {empty_names} have no name"
        )
    column_problems = _column_problems(header, source=source, header_line=header_line)
    if column_problems:
        _raise(column_problems)
    if not rows and not problems:
        raise SampleSheetError(f"{source}: no samples (only a header on line {header_line})")
    table = pd.DataFrame(rows, columns=header, dtype=object)
    problems += validate_rows(table, source=source, lines=lines, header_line=header_line)
    if problems:
        _raise(sorted(problems, key=lambda p: p.line or 0))
    sheet = _typed(table)
    if base_dir is not None:
        sheet["fcs"] = [str(Path(base_dir) / f) for f in sheet["fcs"]]
    return sheet


def sanitize_id(text: str, *, fallback: str = "sample") -> str:
    """Make ``text`` a valid sample or batch ID.

    Runs of characters other than letters, digits, ``_``, ``.`` and ``-`` become
    ``_``; leading characters other than letters and digits are dropped.

    Examples
    --------
    >>> sanitize_id("B01 KC-A-W---91-US")
    'B01_KC-A-W---91-US'
    >>> sanitize_id("._Tube #3 (CD3)")
    'Tube_3_CD3_'
    >>> sanitize_id("###")
    'sample'
    """
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
    clean = re.sub(r"^[^A-Za-z0-9]+", "", clean)
    return clean or fallback


def _name_fields(stem: str, pattern: re.Pattern[str]) -> dict[str, str]:
    match = pattern.search(stem)
    if match is None:
        return {}
    return {k: v for k, v in match.groupdict().items() if v}


#: ``$SRC`` values that instruments write when nobody typed a source
_NO_SOURCE = frozenset({"", "na", "n/a", "nan", "none", "null", "default"})


def _batch_and_day(
    path: Path, fields: Mapping[str, str], keywords: Mapping[str, str]
) -> tuple[str, int | None]:
    """Batch ("" if unknown) and day of a file: from its name, else its keywords."""
    notes: list[str] = []
    batch = fields.get("batch", "")
    if not batch:
        for key in ("CIKFLOW_BATCH", "$SRC"):
            value = keywords.get(key, "")
            if value.casefold() not in _NO_SOURCE:
                batch = value
                log.info("%s: batch %r from keyword %s", path, value, key)
                break
        else:
            notes.append("no batch in the file name nor in CIKFLOW_BATCH or $SRC")
    day: int | None = None
    for origin, text in (
        ("file name", fields.get("day")),
        ("CIKFLOW_DAY", keywords.get("CIKFLOW_DAY")),
    ):
        if not text:
            continue
        value = _parse_int(text)
        if isinstance(value, int) and value >= 0:
            day = value
            if origin != "file name":
                log.info("%s: day %d from keyword %s", path, day, origin)
            break
        notes.append(f"{origin} gives day {text!r}, not an integer >= 0")
    if day is None:
        notes.append("no day in the file name nor in CIKFLOW_DAY")
    if notes:
        empty = [c for c, v in (("batch", batch), ("day", day)) if v in ("", None)]
        outcome = f"left {' and '.join(map(repr, empty))} empty" if empty else "used the keywords"
        log.warning("%s: %s; %s", path, "; ".join(notes), outcome)
    return (sanitize_id(batch, fallback="") if batch else ""), day


def _scan_defaults(defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values given to every scanned row; only optional sheet columns may be set."""
    defaults = dict(defaults or {})
    optional = [c for c in COLUMNS if c not in REQUIRED_COLUMNS]
    unknown = sorted(set(defaults) - set(optional))
    if unknown:
        msg = f"defaults: {unknown} are not optional sheet columns ({', '.join(optional)})"
        raise ValueError(msg)
    return defaults


def _fcs_files(folder: Path) -> list[Path]:
    """The FCS files below ``folder`` (hidden folders and files left out), by relative path."""
    return sorted(
        (
            p
            for p in folder.rglob("*")
            if p.suffix.lower() == ".fcs"
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
            and p.is_file()
        ),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def _unique_sample(sample: str, *, used: set[str], path: Path) -> str:
    """``sample``, or ``sample_2``, ``sample_3`` … when taken (case-insensitively)."""
    if sample.casefold() in used:
        n = 2
        while f"{sample}_{n}".casefold() in used:
            n += 1
        log.warning("%s: sample ID %r is taken; using %r", path, sample, f"{sample}_{n}")
        sample = f"{sample}_{n}"
    return sample


def _scanned_sheet(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The scanned rows as a sheet with the column types of a read one."""
    sheet = pd.DataFrame(rows, columns=list(COLUMNS))
    sheet["day"] = pd.array(sheet["day"].tolist(), dtype="Int64")
    for column in INTEGER_COLUMNS | NUMBER_COLUMNS:
        if column != "day":
            sheet[column] = pd.to_numeric(sheet[column], errors="raise").astype("float64")
    for column in ("sample", "batch", "fcs", "label"):
        sheet[column] = sheet[column].fillna("").astype(str).astype(object)
    return sheet


def scan_folder(
    folder: str | Path,
    *,
    pattern: str | re.Pattern[str] = DEFAULT_PATTERN,
    defaults: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Draft a sample sheet from a folder of FCS files.

    Finds ``*.fcs`` files (any case) under ``folder`` recursively, skipping hidden
    files and folders (names starting with ``.``, e.g. macOS ``._*`` files), and
    reads only their TEXT keywords. Review the draft and fill in the numbers
    before use; write it with :func:`cikflow.io.tables.write_table`.

    Parameters
    ----------
    folder : str or pathlib.Path
        Folder to scan. ``fcs`` paths in the draft are ``folder`` joined with the
        file's path below it, so a relative ``folder`` gives paths relative to the
        working directory.
    pattern : str or re.Pattern
        Regular expression searched in the file name without its ``.fcs``
        suffix, with named groups ``batch`` and ``day`` (digits), and optionally
        ``sample``; default :data:`DEFAULT_PATTERN`. Where the name does not
        match (or a group is empty), the batch comes from the ``CIKFLOW_BATCH``
        or else the ``$SRC`` keyword and the day from ``CIKFLOW_DAY``; failing
        those, the cell is left empty and a warning is logged.
    defaults : mapping, optional
        Values for the optional columns (``weight_kg``, ``culture_volume_mL``,
        ``beads_per_tube``, ``sample_volume_uL``, ``viable_cells_per_uL``,
        ``dilution``, ``label``) in every row; other optional cells are empty.

    Returns
    -------
    pandas.DataFrame
        One row per readable file, sorted by path, with the columns of
        :data:`COLUMNS` in order. ``sample`` is the file name without suffix
        made a valid ID (or the ``sample`` group), made unique with ``_2``,
        ``_3`` … suffixes; ``day`` is a nullable ``Int64``. Unreadable files are
        skipped with a logged warning naming the file and the error.

    Raises
    ------
    SampleSheetError
        ``folder`` is not a folder.
    ValueError
        ``pattern`` lacks a ``batch`` or ``day`` group, or ``defaults`` names a
        column that is not an optional sheet column.

    Examples
    --------
    The default pattern:

    >>> import re
    >>> for name in ["B01_d07", "PT3-day14", "CIK_B2_D0", "2024-01-05_B01_d07_tube2"]:
    ...     match = re.search(DEFAULT_PATTERN, name)
    ...     print(name, match["batch"], int(match["day"]))
    B01_d07 B01 7
    PT3-day14 PT3 14
    CIK_B2_D0 B2 0
    2024-01-05_B01_d07_tube2 B01 7
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SampleSheetError(f"{folder}: not a folder")
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    if not {"batch", "day"} <= set(regex.groupindex):
        msg = f"pattern {regex.pattern!r} needs named groups 'batch' and 'day'"
        raise ValueError(msg)
    defaults = _scan_defaults(defaults)
    files = _fcs_files(folder)
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    for path in files:
        try:
            keywords = read_keywords(path)
        except Exception as exc:  # fcsparser raises many types; all mean "unreadable"
            log.warning(
                "%s: skipped, cannot read its keywords (%s: %s)", path, type(exc).__name__, exc
            )
            continue
        stem = path.stem
        fields = _name_fields(stem, regex)

        batch, day = _batch_and_day(path, fields, keywords)

        sample = _unique_sample(sanitize_id(fields.get("sample") or stem), used=used, path=path)
        used.add(sample.casefold())
        rows.append(
            {
                "sample": sample,
                "batch": batch,
                "day": day,
                "fcs": path.as_posix(),
                **defaults,
            }
        )
    return _scanned_sheet(rows)
