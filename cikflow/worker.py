"""Warm workers for the workflow's jobs: libraries imported once, each job a fork.

Snakemake runs each job of a ``script:`` rule as a new Python process, which imports
its libraries anew: 2–3 s of CPU per job (``import flowkit`` alone ≈ 2 s) for about a
second of work. With local execution the workflow starts one server per run
(:func:`start_server`, from the Snakefile's ``onstart``) that imports them once. Each
job's script begins with :func:`hand_over`: the job's process sends the server its
script (the file Snakemake wrote: preamble and body), working directory, environment
and standard streams, and the server forks. The child *is* the job, with everything
imported: it runs the script and exits with its status, which the job's process
waits for and exits with. Outputs, logs, exit status, failure isolation (one job per
child) and rerun granularity are those of the job run alone.

Without a server (cluster execution, a dry run, ``CIKFLOW_WORKER=off``, the server
gone) :func:`hand_over` returns at once and the script runs in its own process, as
before. The server ends with the run (:func:`stop_server`) or when the Snakemake
process that started it is gone; a job whose process dies (killed by Snakemake) has
its child killed. The protocol is Unix-socket only (POSIX).

Written by hand: no well-kept library serves forked, pre-imported Python workers to
short-lived client processes (``multiprocessing``'s forkserver serves its own pool,
not other processes' scripts).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import runpy
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["ENV", "RECORD_ENV", "hand_over", "replay", "serve", "start_server", "stop_server"]

#: environment variable naming the server's socket (``off``: never hand over)
ENV = "CIKFLOW_WORKER"
#: a folder where each job's request is also written (``bench/batch.py`` replays them)
RECORD_ENV = "CIKFLOW_RECORD_JOBS"
#: what the server imports once (each job's child inherits them)
WARM = (
    "numpy",
    "pandas",
    "scipy.stats",
    "flowkit",
    "sklearn.cluster",
    "sklearn.mixture",
    "plotly.graph_objects",
    "jinja2",
    "jsonschema",
    "snakemake.io",
    "cikflow.steps",
    "cikflow.report.html",
    "cikflow.report.pdf",
)
_IN_JOB = False  # True in a forked job: hand_over returns at once


def hand_over(snakemake: Any, *, script: str) -> None:
    """Run this job's script in a warm worker, then exit with its status.

    Call first thing in a workflow script: ``hand_over(snakemake, script=__file__)``.
    Returns (and the script goes on in this process) when there is no server to
    hand over to.

    Parameters
    ----------
    snakemake : snakemake.script.Snakemake
        The job's ``snakemake`` object (the child's global of that name).
    script : str
        The script file (``__file__``).
    """
    path = os.environ.get(ENV, "")
    serving = bool(path) and path != "off" and Path(path).exists()
    if _IN_JOB or not (serving or os.environ.get(RECORD_ENV)):
        return
    request = {
        "script": str(Path(script).resolve()),
        "cwd": str(Path.cwd()),
        "env": dict(os.environ),
        "argv": sys.argv,
        "snakemake": snakemake,
    }
    body = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
    if os.environ.get(RECORD_ENV):
        record = Path(os.environ[RECORD_ENV]) / f"{time.time_ns()}-{os.getpid()}.pickle"
        record.write_bytes(body)
    if not serving:
        return
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:  # the server is gone: run here
        return
    with conn:
        sys.stdout.flush()
        sys.stderr.flush()
        socket.send_fds(conn, [struct.pack("!Q", len(body))], [0, 1, 2])
        conn.sendall(body)
        reply = _read_line(conn)
        if reply is None:  # refused before forking: run here
            return
        pid = json.loads(reply)["pid"]

        def forward(signum: int, _frame: Any) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, forward)
        done = _read_line(conn)
    status = json.loads(done)["status"] if done else 1
    os._exit(status)  # the job's status; nothing of this process is left to run


def _read_line(conn: socket.socket) -> str | None:
    """One newline-ended message, or None at end of stream."""
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = conn.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            return None
        data += chunk
    return data.decode()


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``conn`` (ValueError if it ends first)."""
    data = b""
    while len(data) < n:
        chunk = conn.recv(min(n - len(data), 1 << 16))
        if not chunk:
            raise ValueError("connection closed mid-message")
        data += chunk
    return data


def replay(request: dict[str, Any], *, cwd: str | Path) -> None:
    """Run a recorded job (:data:`RECORD_ENV`) in this process, in the folder ``cwd``.

    For ``bench/batch.py``: the same scripts with the same ``snakemake`` objects, in
    long-lived processes, without Snakemake. Raises what the script raises.
    """
    global _IN_JOB
    _IN_JOB = True
    os.chdir(cwd)
    runpy.run_path(
        request["script"], init_globals={"snakemake": request["snakemake"]}, run_name="__main__"
    )


def _run_job(request: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: become the job and run its script; return its status."""
    global _IN_JOB
    _IN_JOB = True
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    try:
        runpy.run_path(
            request["script"], init_globals={"snakemake": request["snakemake"]}, run_name="__main__"
        )
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _fork_job(conn: socket.socket, *, others: list[socket.socket]) -> int | None:
    """Receive one request on ``conn`` and fork its child; its pid (None: bad request).

    ``others``: the server's other sockets, closed in the child.
    """
    try:
        header, fds, _flags, _addr = socket.recv_fds(conn, 8, 3)
        header += _read_exactly(conn, 8 - len(header))
        body = _read_exactly(conn, struct.unpack("!Q", header)[0])
    except (OSError, ValueError, struct.error):
        return None
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return None
    pid = os.fork()
    if pid == 0:  # the job
        status = 1
        try:
            for other in others:
                other.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            status = _run_job(pickle.loads(body), fds)  # unpickled in the job only
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)
    for fd in fds:
        os.close(fd)
    conn.sendall((json.dumps({"pid": pid}) + "\n").encode())
    return pid


def serve(path: str, *, parent: int) -> None:
    """Serve jobs on the Unix socket ``path`` until ``parent`` is gone or SIGTERM.

    Imports :data:`WARM` first; then per connection forks one child
    (:func:`_run_job`), tells the client the child's pid, and at the child's end its
    exit status. A client that disconnects first has its child killed.

    Parameters
    ----------
    path : str
        Socket path (created here).
    parent : int
        Process id of the Snakemake process; the server ends when it is gone.
    """
    import importlib

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # first: jobs queue on the socket while the imports run
    listener.listen(64)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the jobs; the run ends us
    running: dict[int, socket.socket] = {}  # child pid -> its client's connection
    stop = False

    def on_term(_signum: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)  # before the imports: a stop then still cleans up
    for name in WARM:
        if stop:
            break
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    try:
        while not stop and os.getppid() == parent:
            conns = {c.fileno(): (pid, c) for pid, c in running.items()}
            try:
                ready, _, _ = select.select(
                    [listener, *[c for _, c in conns.values()]], [], [], 0.2
                )
            except InterruptedError:
                ready = []
            for item in ready:
                if item is listener:
                    conn, _ = listener.accept()
                    pid = _fork_job(conn, others=[listener, *running.values()])
                    if pid is None:
                        conn.close()
                    else:
                        running[pid] = conn
                else:  # a client spoke or went away before its child ended: kill the child
                    pid, conn = conns[item.fileno()]
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            _reap(running)
    finally:
        for pid in list(running):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(running, block=True)
        listener.close()
        Path(path).unlink(missing_ok=True)


def _reap(running: dict[int, socket.socket], *, block: bool = False) -> None:
    """Collect ended children and send each one's exit status to its client."""
    while running:
        try:
            pid, wait_status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            running.clear()
            return
        if pid == 0:
            return
        conn = running.pop(pid, None)
        if conn is None:
            continue
        status = os.waitstatus_to_exitcode(wait_status)
        status = 128 - status if status < 0 else status  # killed by a signal: 128 + n
        with contextlib.suppress(OSError):
            conn.sendall((json.dumps({"status": status}) + "\n").encode())
        conn.close()


def start_server(*, timeout: float = 60.0) -> subprocess.Popen[bytes] | None:
    """Start the run's server and point the jobs at it (``os.environ[ENV]``).

    Returns the server process, or None when ``CIKFLOW_WORKER=off`` or it did not
    come up within ``timeout`` seconds (the jobs then run in their own processes).
    """
    if os.environ.get(ENV) == "off" or not hasattr(socket, "send_fds"):
        return None
    folder = tempfile.mkdtemp(prefix="cikflow-worker-")
    path = str(Path(folder) / "socket")
    env = {**os.environ, ENV: "off"}  # the server itself never hands over
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # no BLAS thread pools to fork (a job is one thread)
    code = f"from cikflow.worker import serve; serve({path!r}, parent={os.getpid()})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if Path(path).exists():
            os.environ[ENV] = path
            return proc
        time.sleep(0.05)
    stop_server(proc)
    return None


def stop_server(proc: subprocess.Popen[bytes] | None) -> None:
    """End the server (if any) and stop handing jobs to it."""
    if proc is None:
        return
    folder = None
    if os.environ.get(ENV, "") not in ("", "off"):
        folder = Path(os.environ.pop(ENV)).parent
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if folder is not None:  # the server removes its socket; if it could not, here
        (folder / "socket").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()
