"""The serving process as the tests and benchmarks/serving_load.py use it: a real `python -m serving`
over real HTTP, started, awaited and killed as every local server is (deploy/processes.py: its own
session, its output in a file, stopped by killing its process group by pid)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy.processes import free_port, kill_group, start_server, wait_until_ready
from serving.auth import TOKEN_ENV

REPO = Path(__file__).resolve().parents[1]


def call(url: str, body: dict | None = None, method: str | None = None, token: str | None = None,
         raw: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """(status, JSON body); `raw` sends bytes as they are instead of `body` as JSON."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@dataclass
class Service:
    base: str
    process: subprocess.Popen
    log_path: Path
    token: str | None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the whole group: nothing the service does can delay or soften it."""
        kill_group(self.process)


@contextlib.contextmanager
def running_service(log_path: Path, token: str | None, env: dict | None = None, host: str = "127.0.0.1",
                    startup_seconds: float = 180, cwd: Path = REPO):
    """Starts `python -m serving` on a free loopback port (AD_* settings from `env` or this process)
    and yields a Service once /health answers; always killed on the way out."""
    port = free_port()
    env = dict(os.environ if env is None else env)
    env.pop(TOKEN_ENV, None)
    if token is not None:
        env[TOKEN_ENV] = token
    process = start_server([sys.executable, "-m", "serving", "--host", host, "--port", str(port)], log_path, env, cwd)
    service = Service(f"http://127.0.0.1:{port}", process, log_path, token)
    try:
        wait_until_ready(f"{service.base}/health", process, log_path, startup_seconds)
        yield service
    finally:
        service.kill()
