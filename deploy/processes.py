"""Servers started from a script or a test (the serving process, the MLflow server, the UIs): each in
its own session with default signal handling and its output in a file (a pipe nobody reads would
fill up and stall it), ready once a URL answers 200, stopped by killing its process group by pid (a
server started in the background here may ignore SIGINT and SIGTERM)."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(command: list[str], log_path: Path, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)


def wait_until_ready(url: str, process: subprocess.Popen, log_path: Path, timeout_s: float, poll_s: float = 0.5) -> None:
    """Returns once `url` answers 200; raises with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{Path(process.args[0]).name} {' '.join(map(str, process.args[1:3]))} did not "
                               f"start:\n{Path(log_path).read_text(errors='replace')[-3000:]}")
        time.sleep(poll_s)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to the process's whole session: nothing it does can delay or soften it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
