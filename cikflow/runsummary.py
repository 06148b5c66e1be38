"""The one line a run ends with: samples analysed, failed (by name), review required."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunSummary", "summarize_run"]


@dataclass(frozen=True)
class RunSummary:
    """What a finished run holds.

    Attributes
    ----------
    analysed : tuple of str
        Samples gated (present in ``summary.tsv``).
    failed : tuple of str
        Samples that could not be analysed (``failed.tsv``).
    review : tuple of str
        Analysed samples marked "review required".
    """

    analysed: tuple[str, ...]
    failed: tuple[str, ...]
    review: tuple[str, ...]

    def line(self, *, report: str = "") -> str:
        """The summary line, e.g. ``4 samples analysed, 1 failed (x), 2 review required``.

        Examples
        --------
        >>> RunSummary(analysed=("a", "b"), failed=("c",), review=("b",)).line()
        'cikflow: 2 samples analysed, 1 failed (c), 1 review required (b)'
        """

        def names(items: tuple[str, ...], limit: int = 10) -> str:
            shown = ", ".join(items[:limit])
            return shown + (f", … {len(items) - limit} more" if len(items) > limit else "")

        parts = [f"{len(self.analysed)} samples analysed"]
        parts.append(
            f"{len(self.failed)} failed" + (f" ({names(self.failed)})" if self.failed else "")
        )
        parts.append(
            f"{len(self.review)} review required"
            + (f" ({names(self.review)})" if self.review else "")
        )
        text = "cikflow: " + ", ".join(parts)
        return text + (f"; report: {report}" if report else "")


def summarize_run(*, summary: pd.DataFrame, failed: pd.DataFrame) -> RunSummary:
    """Samples analysed, failed and review-required from ``summary.tsv`` and ``failed.tsv``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"sample": ["a", "a", "b"], "review_required": [False, True, False]})
    >>> f = pd.DataFrame({"sample": ["c"]})
    >>> summarize_run(summary=s, failed=f)
    RunSummary(analysed=('a', 'b'), failed=('c',), review=('a',))
    """
    analysed = tuple(dict.fromkeys(str(x) for x in summary["sample"]))
    flagged = summary.loc[summary["review_required"].astype(str).isin(["True", "true"]), "sample"]
    review = tuple(s for s in analysed if s in set(flagged.astype(str)))
    failed_names = tuple(dict.fromkeys(str(x) for x in failed["sample"]))
    return RunSummary(analysed=analysed, failed=failed_names, review=review)
