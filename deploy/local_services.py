"""The team profile's servers, started locally: a PostgreSQL cluster (Debian's `postgresql` package,
run as the `postgres` user when started by root) holding the Dagster instance and the MLflow backend
store, and an MLflow tracking server over it with its own artifact root. Both listen on 127.0.0.1
only; the database password comes from AD_POSTGRES_PASSWORD and is never written to a file, a
command line or a log (libpq reads PGPASSWORD). Used by tests/test_team_profile.py; by hand:

    export AD_POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
    python -m deploy.local_services start --root .data/team     # prints the variables to export
    python -m deploy.local_services stop --root .data/team

Each is stopped by its pid (a background server here may ignore SIGTERM from a script).
"""
from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.processes import free_port, start_server, wait_until_ready

PASSWORD_ENV = "AD_POSTGRES_PASSWORD"
USER = "adflow"
DAGSTER_DB, MLFLOW_DB = "adflow_dagster", "adflow_mlflow"


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (Debian keeps them out of PATH, per version)."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return found


@dataclass
class Services:
    root: Path
    postgres_port: int
    mlflow_port: int

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def mlflow_pid_file(self) -> Path:
        return self.root / "mlflow.pid"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def env(self) -> dict[str, str]:
        """What adflow needs to use them (the password stays in AD_POSTGRES_PASSWORD)."""
        return {"AD_POSTGRES_HOST": "127.0.0.1", "AD_POSTGRES_PORT": str(self.postgres_port),
                "AD_POSTGRES_USER": USER, "AD_DAGSTER_POSTGRES_DB": DAGSTER_DB,
                "MLFLOW_TRACKING_URI": self.tracking_uri}


def _as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a server command as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def _psql(services: Services, sql: str) -> None:
    """SQL as the postgres superuser over the cluster's Unix socket (local trust), sent on stdin so
    that no command line carries it."""
    _as_postgres([postgres_bin("psql"), "-h", str(services.pgdata), "-p", str(services.postgres_port), "-U",
                  "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=sql)


def start_postgres(services: Services, password: str) -> None:
    services.root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        postgres_user = pwd.getpwnam("postgres")
        os.chown(services.root, postgres_user.pw_uid, postgres_user.pw_gid)
    # Trust only on the cluster's own Unix socket (in its data folder), passwords over TCP.
    _as_postgres([postgres_bin("initdb"), "-D", str(services.pgdata), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "--no-sync"])
    _as_postgres([postgres_bin("pg_ctl"), "-D", str(services.pgdata), "-l", str(services.pgdata / "server.log"),
                  "-o", f"-c listen_addresses=127.0.0.1 -p {services.postgres_port} -k {services.pgdata}",
                  "-w", "start"])
    quoted = password.replace("'", "''")
    _psql(services, f"create role {USER} login password '{quoted}'")
    for database in (DAGSTER_DB, MLFLOW_DB):
        _psql(services, f"create database {database} owner {USER}")


def start_mlflow(services: Services, password: str) -> None:
    """`mlflow server` on the Postgres backend store, artifacts under root/mlflow-artifacts served
    through the server; its own session, stopped by pid."""
    artifacts = services.root / "mlflow-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = services.root / "mlflow-server.log"
    process = start_server(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(services.mlflow_port),
         "--backend-store-uri", f"postgresql+psycopg2://{USER}@127.0.0.1:{services.postgres_port}/{MLFLOW_DB}",
         "--artifacts-destination", artifacts.as_uri(), "--serve-artifacts", "--workers", "1"],
        log_path, env={**os.environ, "PGPASSWORD": password})
    services.mlflow_pid_file.write_text(str(process.pid))
    wait_until_ready(f"{services.tracking_uri}/health", process, log_path, timeout_s=180, poll_s=1)


def start(root: Path, password: str) -> Services:
    services = Services(root.resolve(), free_port(), free_port())
    try:
        start_postgres(services, password)
        start_mlflow(services, password)
    except BaseException:
        stop(services)  # nothing left running when a start fails halfway
        raise
    return services


def stop(services: Services) -> None:
    if services.mlflow_pid_file.exists():
        with_pid = int(services.mlflow_pid_file.read_text())
        try:
            os.killpg(with_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        services.mlflow_pid_file.unlink()
    postmaster = services.pgdata / "postmaster.pid"
    if postmaster.exists():
        pid = int(postmaster.read_text().splitlines()[0])
        try:
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown of the cluster by its pid
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not postmaster.exists():
                break
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.action == "start":
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise SystemExit(f"set {PASSWORD_ENV} first (the database password; never stored)")
        services = start(args.root, password)
        (args.root / "ports").write_text(f"{services.postgres_port} {services.mlflow_port}")
        for name, value in services.env().items():
            print(f"export {name}={value}")
    else:
        postgres_port, mlflow_port = map(int, (args.root / "ports").read_text().split())
        stop(Services(args.root.resolve(), postgres_port, mlflow_port))


if __name__ == "__main__":
    main()
