"""The warm worker: a job's script handed over runs in a fork of the server, as itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cikflow.worker import ENV, start_server, stop_server

if TYPE_CHECKING:
    from collections.abc import Iterator

#: a job's script as the workflow's are: hand_over first, then the body
JOB = """\
import os
import sys
import time
import types

from cikflow.worker import hand_over

snakemake = globals().get("snakemake") or types.SimpleNamespace(output=sys.argv[1:])
hand_over(snakemake, script=__file__)
out = snakemake.output[0]
with open(out, "w") as f:
    f.write(f"{os.getpid()} {os.getppid()} {os.getcwd()} {os.environ.get('JOB_VAR')}")
print("to stdout")
print("to stderr", file=sys.stderr)
if out.endswith("sleep"):
    time.sleep(60)
if out.endswith("fail"):
    raise RuntimeError("the step failed")
sys.exit(3)
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen[bytes]]:
    monkeypatch.delenv(ENV, raising=False)
    proc = start_server(timeout=120)
    assert proc is not None
    try:
        yield proc
    finally:
        stop_server(proc)


def _job(tmp_path: Path, out: str, **env: str) -> subprocess.Popen[str]:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / out)],
        cwd=tmp_path,
        env={**os.environ, "JOB_VAR": "seen", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_handed_over_job_runs_in_a_fork_of_the_server_as_itself(server, tmp_path):
    job = _job(tmp_path, "out")
    stdout, stderr = job.communicate(timeout=120)
    assert job.returncode == 3  # the script's own exit status
    assert stdout == "to stdout\n"  # the job's streams are the script's
    assert stderr == "to stderr\n"
    pid, ppid, cwd, var = (tmp_path / "out").read_text().split()
    assert int(ppid) == server.pid  # forked by the server ...
    assert int(pid) != job.pid  # ... not run in the job's own process
    assert (cwd, var) == (str(tmp_path), "seen")  # in the job's directory and environment


def test_an_error_in_the_script_is_the_jobs_error(server, tmp_path):
    job = _job(tmp_path, "fail")
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 1
    assert "RuntimeError: the step failed" in stderr
    assert "Traceback" in stderr


def test_without_a_server_the_script_runs_in_its_own_process(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    for env in ({ENV: "off"}, {ENV: str(tmp_path / "no-such-socket")}):
        job = _job(tmp_path, "out", **env)
        stdout, _ = job.communicate(timeout=120)
        assert job.returncode == 3
        assert stdout == "to stdout\n"
        pid, _ppid, _cwd, _var = (tmp_path / "out").read_text().split()
        assert int(pid) == job.pid


def _gone(pid: int, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _sleeping_job(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """A job that sleeps in its fork, once it has started: the job and the fork's pid."""
    job = _job(tmp_path, "sleep")
    out = tmp_path / "sleep"
    deadline = time.monotonic() + 120
    while not out.exists() or not out.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job, int(out.read_text().split()[0])


def test_a_killed_job_takes_its_fork_with_it(server, tmp_path):
    job, child = _sleeping_job(tmp_path)
    job.send_signal(signal.SIGKILL)  # as Snakemake may end a job
    job.communicate(timeout=30)
    assert _gone(child, within=10)


def test_a_terminated_job_passes_the_signal_on(server, tmp_path):
    job, child = _sleeping_job(tmp_path)
    job.terminate()
    job.communicate(timeout=30)
    assert job.returncode == 128 + signal.SIGTERM  # the fork's end, as the shell reports it
    assert _gone(child, within=10)


def test_the_server_ends_with_the_run_and_leaves_no_socket(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    proc = start_server(timeout=120)
    assert proc is not None
    path = os.environ[ENV]
    assert Path(path).exists()
    stop_server(proc)
    assert proc.poll() is not None
    assert ENV not in os.environ
    assert not Path(path).exists()
    assert not Path(path).parent.exists()
