"""The workflow's terminal output: warnings, errors, the plan and a line per stage."""

from __future__ import annotations

import io
import logging

from snakemake_interface_logger_plugins.common import LogEvent

from cikflow.io.terminal import StageProgress, show_stages


def _record(msg: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("snakemake.logging", level, __file__, 0, msg, None, None)
    record.__dict__.update(extra)
    return record


def test_eight_jobs_of_a_stage_report_each_quarter():
    seconds = iter(range(0, 1000, 30))
    progress = StageProgress(clock=lambda: float(next(seconds)))
    plan = _record("Job stats: ...", event=LogEvent.RUN_INFO, stats={"gate": 8, "total": 9})
    assert progress.filter(plan)
    for job in range(8):
        info = _record("rule gate", event=LogEvent.JOB_INFO, jobid=job, rule_name="gate")
        assert not progress.filter(info)
        done = _record(f"Finished jobid: {job}", event=LogEvent.JOB_FINISHED, job_id=job)
        assert not progress.filter(done)
        assert done.getMessage() == f"Finished jobid: {job}"  # untouched for the log file
    # the clock advanced 30 s per call after the first (made at 0)
    assert progress.shown == [
        "cikflow [0:00:30] gate: 2 of 8 done",
        "cikflow [0:01:00] gate: 4 of 8 done",
        "cikflow [0:01:30] gate: 6 of 8 done",
        "cikflow [0:02:00] gate: 8 of 8 done",
    ]


def test_warnings_errors_and_plain_messages_pass_job_chatter_does_not():
    progress = StageProgress()
    assert progress.filter(_record("cikflow: report.pdf: auto", logging.WARNING))
    assert progress.filter(_record("Error in rule gate", logging.ERROR, event=LogEvent.JOB_ERROR))
    assert progress.filter(_record("Nothing to be done (all requested files are present)."))
    assert progress.filter(_record("Complete log(s): .snakemake/log/x.log"))
    for chatter in ("Select jobs to execute...", "Execute 2 jobs...", "Building DAG of jobs..."):
        assert not progress.filter(_record(chatter))
    assert not progress.filter(_record("3 of 9 steps (33%) done", event=LogEvent.PROGRESS))
    # the target rule is no stage
    progress.filter(_record("rule all", event=LogEvent.JOB_INFO, jobid=1, rule_name="all"))
    assert not progress.filter(_record("Finished", event=LogEvent.JOB_FINISHED, job_id=1))


def test_only_the_terminal_is_filtered_the_log_file_keeps_everything(tmp_path):
    logger = logging.getLogger("cikflow.test.terminal")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    screen = io.StringIO()
    terminal = logging.StreamHandler(screen)
    logfile = logging.FileHandler(tmp_path / "run.log")
    logger.handlers = [terminal, logfile]
    try:
        progress = show_stages(logger)
        assert progress in terminal.filters
        assert progress not in logfile.filters
        plan = {"event": LogEvent.RUN_INFO, "stats": {"gate": 1, "total": 1}}
        logger.info("Job stats: gate 1", extra=plan)
        logger.info(
            "rule gate", extra={"event": LogEvent.JOB_INFO, "jobid": 3, "rule_name": "gate"}
        )
        logger.info(
            "Finished jobid: 3 (Rule: gate)", extra={"event": LogEvent.JOB_FINISHED, "job_id": 3}
        )
    finally:
        logfile.close()
        logger.handlers = []
    shown = screen.getvalue().splitlines()
    assert shown[0] == "Job stats: gate 1"
    assert shown[1].endswith("gate: 1 of 1 done")
    assert len(shown) == 2
    kept = (tmp_path / "run.log").read_text().splitlines()
    assert kept == ["Job stats: gate 1", "rule gate", "Finished jobid: 3 (Rule: gate)"]
