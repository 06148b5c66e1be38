"""Gate memberships matching the ISAC GatingML 2.0 truth, per file: cikflow vs flowkit.

    .venv/bin/python bench/gatingml_compliance.py [../shared/data/gatingml-flowkit]

For each ``gml/*.xml`` of the compliance set, every gate ID with a truth file
(``truth/Results_<id>.txt``) is one case. cikflow reads the file as a template
(``read_template``, gate by gate) and gates ``data1.fcs`` with ``gate_fcs``; flowkit
reads it with ``parse_gating_xml`` and gates with ``GatingStrategy.gate_sample``. A
case matches when every event's membership equals the truth; a gate left out, or a
file that cannot be read, matches nothing. One line per file, then the totals.
``tests/test_compliance.py`` asserts cikflow matches at least as many as flowkit on
every file.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: gate ID → truth file stem, where they differ
TRUTH_STEMS = {"ParRectangle1": "ParQuadRect"}
_GATING_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
_GATE_TAGS = {"RectangleGate", "PolygonGate", "EllipsoidGate", "BooleanGate", "QuadrantGate"}
_GATE_TAGS |= {"Quadrant"}


@dataclass(frozen=True)
class FileScore:
    """Cases of one GatingML file and how many each reader gets right."""

    file: str
    cases: int
    cikflow: int
    flowkit: int
    cikflow_error: str = ""
    flowkit_error: str = ""


def truth_path(gml_dir: Path, gate_id: str) -> Path:
    """The truth file of a gate of the compliance set."""
    return gml_dir / "truth" / f"Results_{TRUTH_STEMS.get(gate_id, gate_id)}.txt"


def truth(gml_dir: Path, gate_id: str) -> np.ndarray:
    """One bool per event of ``data1.fcs``: the gate's expected membership."""
    return np.loadtxt(truth_path(gml_dir, gate_id), dtype=int).astype(bool)


def gate_ids(xml: Path) -> list[str]:
    """Gate and quadrant IDs of a GatingML file, in document order, read without flowkit."""
    from lxml import etree

    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    ids = (
        element.get(f"{{{_GATING_NS}}}id")
        for element in etree.parse(str(xml), parser).iter()
        if isinstance(element.tag, str) and element.tag.rpartition("}")[2] in _GATE_TAGS
    )
    return [gid for gid in dict.fromkeys(ids) if gid]


def _cikflow(xml: Path, data1) -> dict[str, np.ndarray]:
    from cikflow.gating import gate_fcs
    from cikflow.io import read_template

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gates left out are scored as misses
        return gate_fcs(data1, read_template(xml)).membership


def _flowkit(xml: Path, sample) -> dict[str, np.ndarray]:
    import flowkit as fk

    strategy = fk.parse_gating_xml(str(xml))
    results = strategy.gate_sample(sample)
    out = {}
    for name, path in strategy.get_gate_ids():
        try:  # a quadrant gate itself is no population: its quadrants are
            out[name] = np.asarray(results.get_gate_membership(name, path), dtype=bool)
        except KeyError:
            continue
    return out


def score_file(xml: Path, *, gml_dir: Path, data1, sample) -> FileScore:
    """Score one file for cikflow (``data1``: FcsData) and flowkit (``sample``: fk.Sample)."""
    cases = [gid for gid in gate_ids(xml) if truth_path(gml_dir, gid).is_file()]
    matched, errors = {}, {}
    for reader, read in (("cikflow", lambda: _cikflow(xml, data1)), ("flowkit", None)):
        try:
            membership = read() if read else _flowkit(xml, sample)
        except Exception as exc:  # a file a reader loses scores nothing
            membership, errors[reader] = {}, f"{type(exc).__name__}: {exc}"
        matched[reader] = sum(
            gid in membership and np.array_equal(membership[gid], truth(gml_dir, gid))
            for gid in cases
        )
    return FileScore(
        xml.name,
        len(cases),
        matched["cikflow"],
        matched["flowkit"],
        errors.get("cikflow", ""),
        errors.get("flowkit", ""),
    )


def score_set(gml_dir: Path) -> list[FileScore]:
    """Score every ``gml/*.xml`` of the compliance set."""
    import flowkit as fk

    from cikflow.io import read_fcs

    data1 = read_fcs(gml_dir / "data1.fcs")
    sample = fk.Sample(gml_dir / "data1.fcs")
    return [
        score_file(xml, gml_dir=gml_dir, data1=data1, sample=sample)
        for xml in sorted((gml_dir / "gml").glob("*.xml"))
    ]


def main() -> None:
    """Print one line per file and the totals."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "gatingml-flowkit"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gml_dir", nargs="?", type=Path, default=default)
    args = parser.parse_args()
    scores = score_set(args.gml_dir)
    width = max(len(s.file) for s in scores)
    print(f"{'file':<{width}}  cases  cikflow  flowkit")
    for s in scores:
        note = f"  flowkit: {s.flowkit_error}" if s.flowkit_error else ""
        note += f"  cikflow: {s.cikflow_error}" if s.cikflow_error else ""
        print(f"{s.file:<{width}}  {s.cases:>5}  {s.cikflow:>7}  {s.flowkit:>7}{note}")
    total = [sum(getattr(s, k) for s in scores) for k in ("cases", "cikflow", "flowkit")]
    print(f"{'total':<{width}}  {total[0]:>5}  {total[1]:>7}  {total[2]:>7}")


if __name__ == "__main__":
    main()
