"""Print SHA-256 digests of every corpus file's raw event values as decoded by fcsparser.

The digests in ``tests/data/fcs_corpus_reference.tsv`` were made with fcsparser 0.2.8 and
numpy 1.26 (fcsparser 0.2.4, which cikflow installs, fails on big-endian files under numpy 2).
They let the tests compare cikflow's decoding with a reference decoding of files that no
reference library installed beside cikflow reads (24-bit integers, blank HEADER offsets):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install fcsparser==0.2.8 numpy==1.26.4 six
    /tmp/ref/bin/python bench/fcs_reference_digests.py ../shared/data/fcs-corpus

A digest is the SHA-256 of the values as a C-order little-endian float64 array.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path

import fcsparser
import numpy as np


def main(folder: str) -> int:
    root = Path(folder)
    print(f"# fcsparser {fcsparser.__version__}, numpy {np.__version__}")
    print("path\tn_events\tn_channels\tsha256_float64")
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".tsv"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _, data = fcsparser.parse(str(path), reformat_meta=True)
            except Exception as exc:  # a reference that fails has no digest
                print(
                    f"# {path.relative_to(root).as_posix()}: {type(exc).__name__}", file=sys.stderr
                )
                continue
        values = np.ascontiguousarray(data.to_numpy(dtype=np.float64)).astype("<f8")
        digest = hashlib.sha256(values.tobytes()).hexdigest()
        rel = path.relative_to(root).as_posix()
        print(f"{rel}\t{values.shape[0]}\t{values.shape[1]}\t{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/fcs-corpus"))
