"""Read every file of a folder with cikflow and count read / rejected / crashed.

    .venv/bin/python bench/read_corpus.py ../shared/data/fcs-corpus [--references]

``read``: an FcsData came back; ``rejected``: a named CikflowError; ``crashed``: any other
exception (a bug). With ``--references``, each file is also read with flowio 1.4,
fcsparser and flowkit 1.3 (default calls) and the raw values are compared: ``identical``
counts files whose values equal every reference that reads them (and, for files no
installed reference reads, the fcsparser 0.2.8 digests in
``tests/data/fcs_corpus_reference.tsv``); ``cikflow only`` counts files cikflow reads and
no single reference reads.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from cikflow.exceptions import CikflowError
from cikflow.io import read_fcs

SKIP = {".tsv", ".md", ".txt", ".csv", ".json", ".xml", ".wsp", ".py"}
DIGESTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "fcs_corpus_reference.tsv"


def _references(path: Path) -> dict[str, np.ndarray]:
    """Raw values per reference library that reads the file with its default call."""
    import fcsparser
    import flowio
    import flowkit

    readers = {
        "flowio": lambda: _flowio_values(flowio.FlowData(path)),
        "fcsparser": lambda: fcsparser.parse(str(path))[1].to_numpy(dtype=np.float64),
        "flowkit": lambda: flowkit.Sample(path).get_events(source="raw"),
    }
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, read in readers.items():
            with contextlib.suppress(Exception):  # a reference that fails has no values
                out[name] = read()
    return out


def _flowio_values(fd: object) -> np.ndarray:
    return np.asarray(fd.events, dtype=np.float64).reshape(-1, fd.channel_count)


def _digests() -> dict[str, str]:
    if not DIGESTS.is_file():
        return {}
    lines = [ln.split("\t") for ln in DIGESTS.read_text().splitlines() if not ln.startswith("#")]
    return {r[0]: r[3] for r in lines[1:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--references", action="store_true", help="compare with flowio etc.")
    parser.add_argument("-q", "--quiet", action="store_true", help="totals only")
    args = parser.parse_args()
    logging.getLogger("fcsparser").setLevel(logging.ERROR)  # its notes on non-UTF-8 TEXT
    files = sorted(p for p in args.folder.rglob("*") if p.is_file() and p.suffix not in SKIP)
    counts = dict.fromkeys(("read", "rejected", "crashed", "identical", "cikflow only"), 0)
    digests = _digests() if args.references else {}
    start = time.perf_counter()
    for path in files:
        rel = path.relative_to(args.folder).as_posix()
        try:
            fcs = read_fcs(path)
        except CikflowError as exc:
            counts["rejected"] += 1
            line = f"rejected  {type(exc).__name__}: {exc}"
        except Exception as exc:  # counting crashes is the point
            counts["crashed"] += 1
            line = f"CRASHED   {type(exc).__name__}: {exc}"
        else:
            counts["read"] += 1
            line = f"read      {fcs.n_events}x{len(fcs.pnn)}"
            if fcs.warnings:
                line += f" ({len(fcs.warnings)} repair(s))"
            if args.references:
                refs = _references(path)
                got = fcs.stored_events
                same = {
                    k: np.array_equal(got if k != "flowkit" else fcs.events, v, equal_nan=True)
                    for k, v in refs.items()
                }
                if rel in digests:
                    sha = hashlib.sha256(np.ascontiguousarray(got).astype("<f8").tobytes())
                    same["fcsparser-0.2.8"] = sha.hexdigest() == digests[rel]
                if not refs:
                    counts["cikflow only"] += 1
                if same and all(same.values()):
                    counts["identical"] += 1
                line += "  " + " ".join(f"{k}={'=' if v else 'DIFF'}" for k, v in same.items())
        if not args.quiet:
            print(f"{line}  {rel}")
    seconds = time.perf_counter() - start
    summary = ", ".join(
        f"{k} {v}"
        for k, v in counts.items()
        if args.references or k in ("read", "rejected", "crashed")
    )
    print(f"{len(files)} files in {seconds:.1f} s: {summary}")
    return 1 if counts["crashed"] else 0


if __name__ == "__main__":
    sys.exit(main())
