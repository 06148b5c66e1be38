"""Make the bad-input FCS fixtures of the `.test/` workflow (seeded, deterministic).

Run from the repository root: ``python tests/data/make_fixtures.py``. Writes into
``.test/bad/``: ``not_fcs.fcs`` (text), ``truncated.fcs`` (a valid file cut short)
and ``no_cd56.fcs`` (a valid file whose CD56 detector has no $PnS marker).
"""

from __future__ import annotations

from pathlib import Path

from cikflow.io import write_fcs
from cikflow.simulate import CHANNELS, simulate_batches


def make_bad_inputs(out: Path) -> None:
    """Write the three bad FCS files into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    tube = simulate_batches(n_batches=1, days=(0,), n_events=300, seed=7)[0].samples[0]
    pnn = [c[0] for c in CHANNELS]
    pns = [c[1] for c in CHANNELS]
    (out / "not_fcs.fcs").write_text("sample,CD3,CD56\nthis is a CSV export, not an FCS file\n")
    write_fcs(out / "truncated.fcs", tube.events, pnn=pnn, pns=pns, keywords=tube.keywords)
    data = (out / "truncated.fcs").read_bytes()
    (out / "truncated.fcs").write_bytes(data[: int(len(data) * 0.6)])
    no_cd56 = ["" if marker == "CD56" else marker for marker in pns]
    write_fcs(out / "no_cd56.fcs", tube.events, pnn=pnn, pns=no_cd56, keywords=tube.keywords)


if __name__ == "__main__":
    make_bad_inputs(Path(".test/bad"))
