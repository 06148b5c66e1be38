"""What a workflow run prints: warnings, errors and one progress line per stage.

Snakemake prints every job's rule, inputs, outputs and reason (about 780 lines for
the 12-file demo). :class:`StageProgress` is a :class:`logging.Filter` the workflow
puts on Snakemake's logger: the plan (job stats) stays, job listings and chatter
go, and each stage (rule) reports when a quarter of its jobs and when all are done::

    cikflow [0:00:41] gate: 12 of 12 done

Warnings and errors always pass. Only the terminal is filtered (:func:`show_stages`):
the run's log file under ``.snakemake/log/`` keeps everything. A dry run and
``--verbose`` keep Snakemake's full output (the workflow does not install the filter
then).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["StageProgress", "show_stages"]

#: Snakemake events that describe single jobs (dropped; stages are reported instead)
_JOB_EVENTS = {"JOB_INFO", "JOB_STARTED", "PROGRESS", "SHELLCMD", "RESOURCES_INFO"}
#: scheduler and set-up chatter, by the start of its message
_CHATTER = (
    "Select jobs to execute",
    "Execute ",
    "Building DAG of jobs",
    "Using shell:",
    "Provided cores:",
    "Rules claiming more threads",
    "Conda environments: ignored",
    "Singularity containers: ignored",
    "Assuming unrestricted shared filesystem",
    "Provided resources:",
)


class StageProgress(logging.Filter):
    """A logging filter that turns Snakemake's job listing into a line per stage.

    A finished job never passes as it is: when a stage line is due, a new record
    carrying it goes to ``emit`` (the terminal handler's ``handle``), so the record
    Snakemake's other handlers see (its log file) stays untouched.

    Parameters
    ----------
    clock : callable, optional
        Seconds, monotonic (for tests); the time shown is since the filter was made.
    emit : callable, optional
        Where stage lines go (``handler.handle``); without it they are kept in
        :attr:`shown` only.

    Examples
    --------
    >>> f = StageProgress(clock=lambda: 0.0)
    >>> def record(msg, **extra):
    ...     r = logging.LogRecord("snakemake", logging.INFO, "", 0, msg, None, None)
    ...     r.__dict__.update(extra)
    ...     return r
    >>> class E:  # stands in for Snakemake's LogEvent
    ...     def __init__(self, name): self.name = name
    >>> f.filter(record("Job stats: ...", event=E("RUN_INFO"), stats={"gate": 1, "total": 1}))
    True
    >>> f.filter(record("rule gate", event=E("JOB_INFO"), jobid=7, rule_name="gate"))
    False
    >>> done = record("Finished jobid: 7", event=E("JOB_FINISHED"), job_id=7)
    >>> f.filter(done), done.getMessage(), f.shown
    (False, 'Finished jobid: 7', ['cikflow [0:00:00] gate: 1 of 1 done'])
    >>> f.filter(record("Select jobs to execute..."))
    False
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[logging.LogRecord], object] | None = None,
    ) -> None:
        super().__init__()
        self._clock = clock
        self._emit = emit
        self.shown: list[str] = []
        self._start = clock()
        self._totals: dict[str, int] = {}
        self._done: Counter[str] = Counter()
        self._rule_of: dict[object, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether Snakemake prints ``record``; a finished job may become a stage line."""
        if record.levelno >= logging.WARNING:
            return True
        event = getattr(getattr(record, "event", None), "name", None)
        if event == "RUN_INFO":
            stats = getattr(record, "stats", None) or {}
            self._totals = {str(k): int(v) for k, v in stats.items() if k != "total"}
            return True
        if event == "JOB_INFO":
            self._rule_of[getattr(record, "jobid", None)] = str(getattr(record, "rule_name", ""))
            return False
        if event == "JOB_FINISHED":
            return self._finished(record)
        if event in _JOB_EVENTS or event == "WORKFLOW_STARTED":
            return False
        return not str(record.msg).startswith(_CHATTER)

    def _finished(self, record: logging.LogRecord) -> bool:
        rule = self._rule_of.get(getattr(record, "job_id", None))
        if rule is None or rule == "all":  # the target rule is no stage
            return False
        self._done[rule] += 1
        done, total = self._done[rule], self._totals.get(rule, self._done[rule])
        quarters = {max(round(total * q / 4), 1) for q in (1, 2, 3)} if total >= 8 else set()
        if done != total and done not in quarters:
            return False
        elapsed = round(self._clock() - self._start)
        clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        text = f"cikflow [{clock}] {rule}: {done} of {total} done"
        self.shown.append(text)
        if self._emit is not None:  # a plain message of its own; the job's record untouched
            line = logging.makeLogRecord({**record.__dict__, "msg": text, "args": None})
            line.event = None
            self._emit(line)
        return False


def show_stages(logger: logging.Logger) -> StageProgress:
    """Put a :class:`StageProgress` on ``logger``'s terminal handler (never on its files).

    Parameters
    ----------
    logger : logging.Logger
        Snakemake's logger, its handlers set up.

    Returns
    -------
    StageProgress
        The filter installed.
    """
    terminal = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)]
    progress = StageProgress(emit=terminal[0].handle if terminal else None)
    for handler in terminal[:1]:  # Snakemake writes to the terminal through one handler
        handler.addFilter(progress)
    return progress
