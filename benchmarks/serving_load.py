"""Load on the real-time service: `python -m serving` started on a data root, driven over HTTP on
127.0.0.1 by `--concurrency` clients that each send their next request as soon as the last one is
answered (a closed loop, as an ad server's connection pool does), for a bounded number of requests.

Three paths, one after another in the same run:
- cached: GET /users/{user}/ads for random scheduled users (nothing new since the schedule);
- post:   POST /events with one behavior event for a random scheduled user;
- fresh:  POST an event for a user, then GET that user's ads (the GET rescoring with the event is timed).

It prints p50/p95/p99/max latency and requests per second per path, and the service's peak resident
memory (its processes summed, sampled every 20 ms). The service runs on a throwaway copy of the data
root's serving inputs, so the posted events never land in the root's own landing folder.
`--replicate-users K` serves every scheduled user K times under new ids (K x the users, same models),
to measure the service at scale. The client shares this machine's cores with the service. On demand:

    .venv/bin/python benchmarks/serving_load.py [--data-root PATH] [--requests 3000] [--concurrency 8]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import random
import secrets
import subprocess
import shutil
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd
import psutil

from ml.privacy.pseudonyms import pseudonymize
from ml.settings import Settings
from serving.process import REPO, running_service

PATHS = ("cached", "post", "fresh")


class PeakMemory:
    """The highest resident memory of a process and its children (sampled in a thread), and at
    least the process's own high-water mark since it started (Linux)."""

    def __init__(self, pid: int, every_s: float = 0.02):
        self.process, self.every_s, self.peak = psutil.Process(pid), every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in processes))
            except psutil.Error:
                pass
            self._stop.wait(self.every_s)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        # The kernel's high-water mark covers the snapshot load too, before sampling began.
        status = Path(f"/proc/{self.process.pid}/status")
        if status.exists():
            kib = next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM"))
            self.peak = max(self.peak, int(kib) * 1024)


def serving_copy(settings: Settings, destination: Path) -> Path:
    """What the service reads (warehouse, latest schedule, MLflow store, models) without the landing
    folder, so the events the benchmark posts land in the copy."""
    destination.mkdir(parents=True)
    for name in ("warehouse.duckdb", "mlflow", "models"):
        source = settings.data_root / name
        target = destination / name
        if source.is_dir():
            os.symlink(source, target)  # read only by the service
        elif source.exists():
            shutil.copy2(source, target)  # DuckDB may need to replay its WAL next to the file
    schedule = sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))[-1]
    (destination / "schedules" / schedule.parent.name).mkdir(parents=True)
    shutil.copy2(schedule, destination / "schedules" / schedule.parent.name / "schedule.parquet")
    return destination


def replicated_copy(settings: Settings, destination: Path, copies: int) -> Path:
    """serving_copy with every user `copies` times: copy 0 keeps the user's key, copy c > 0 becomes
    the user md5('c:' || key) with the same events, candidates and schedule rows (same models)."""
    import duckdb

    destination.mkdir(parents=True, exist_ok=True)
    for name in ("mlflow", "models"):
        if (settings.data_root / name).exists():
            os.symlink(settings.data_root / name, destination / name)
    schedule = sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))[-1]
    (destination / "schedules" / schedule.parent.name).mkdir(parents=True)
    key = "case when copy = 0 then user_key else md5(copy || ':' || user_key) end as user_key"
    copied = f"select * exclude (copy) replace ({key}) from {{}}, range({copies}) c(copy)"
    copied_schedule = destination / "schedules" / schedule.parent.name / "schedule.parquet"
    with duckdb.connect(str(destination / "warehouse.duckdb")) as conn:
        conn.execute(f"attach '{settings.warehouse_path}' as source (read_only)")
        for schema in ("ml", "raw"):
            conn.execute(f"create schema {schema}")
        conn.execute(f"create table main.user_event_stream as {copied.format('source.main.user_event_stream')}")
        day_rows = f"(select * from source.ml.scored_candidates where schedule_date = '{schedule.parent.name[5:]}')"
        conn.execute(f"create table ml.scored_candidates as {copied.format(day_rows)}")
        present = {f"{schema}.{name}" for schema, name in conn.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'source'").fetchall()}
        conn.execute("create table main.stg_raw__ads as select * from source.main.stg_raw__ads")  # a dbt view
        for table in ("raw.behavior_events", "raw.ad_events", "ml.ranker_level_corrections"):
            if table in present:
                conn.execute(f"create table {table} as select * from source.{table}")
        source_schedule = f"read_parquet('{schedule}')"
        conn.execute(f"copy ({copied.format(source_schedule)}) to '{copied_schedule}' (format parquet)")
        conn.execute("detach source")
    return destination


def scheduled_users(settings: Settings) -> tuple[list[str], dict[str, int], dt.date]:
    """The schedule's user keys, the user_id behind each (from the landing users), and its date."""
    path = sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))[-1]
    keys = pd.read_parquet(path, columns=["user_key"])["user_key"].unique().tolist()
    user_ids = pd.concat(pd.read_parquet(p, columns=["user_id"]) for p in
                         sorted((settings.landing_dir / "users").rglob("*.parquet")))["user_id"].unique()
    id_of = {pseudonymize(int(u), settings.pseudonym_key): int(u) for u in user_ids}
    return keys, {key: id_of[key] for key in keys if key in id_of}, dt.date.fromisoformat(path.parent.name[5:])


async def _drive(base: str, token: str, concurrency: int, units: int, rate: float,
                 make_requests) -> dict[str, list[float]]:
    """Sends `units` units of work, one every 1/`rate` s (an open loop: arrivals do not wait for
    answers, as ad requests do not), at most `concurrency` in flight; a unit is a list of (label,
    method, path, json) sent in order on one connection. A request's latency counts from when its
    unit was due, so time spent waiting for a free connection is counted, not hidden. Returns the
    latencies (s) per label and the wall time. `rate` 0: each connection sends its next unit as
    soon as the last one is answered (a closed loop: the service's saturation throughput)."""
    latencies: dict[str, list[float]] = {}
    headers = {"authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:
        async def send(number: int, due: float) -> None:
            async with slots:
                for label, method, path, body in make_requests(number):
                    async with session.request(method, path, json=body) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{method} {path} answered {response.status}: "
                                               f"{(await response.text())[:500]}")
                    latencies.setdefault(label, []).append(time.perf_counter() - due)
                    due = time.perf_counter()  # the unit's next request is due once this one is answered

        started = time.perf_counter()
        if rate:
            tasks = []
            for number in range(units):
                due = started + number / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                tasks.append(asyncio.create_task(send(number, due)))
            await asyncio.gather(*tasks)
        else:  # closed loop: `concurrency` clients, each sending its next unit once the last is answered
            numbers = iter(range(units))

            async def client() -> None:
                for number in numbers:
                    await send(number, time.perf_counter())

            await asyncio.gather(*(client() for _ in range(concurrency)))
        latencies["_wall"] = [time.perf_counter() - started]
    return latencies


def _row(path: str, measured: dict[str, list[float]]) -> dict:
    """Latencies of the path's own requests; req/s counts every request of its phase (the fresh
    phase's POSTs too)."""
    ms = np.asarray(measured[path]) * 1000
    sent = sum(len(times) for label, times in measured.items() if label != "_wall")
    return {"path": path, "requests": len(ms), "p50 ms": np.percentile(ms, 50), "p95 ms": np.percentile(ms, 95),
            "p99 ms": np.percentile(ms, 99), "max ms": ms.max(), "req/s": sent / measured["_wall"][0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=None, help="a data root with a schedule "
                        "(default: AD_DATA_ROOT or .data, as `make demo` leaves it)")
    parser.add_argument("--requests", type=int, default=3000, help="per path")
    parser.add_argument("--concurrency", type=int, default=8, help="at most this many requests in flight")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second sent (the fresh path's "
                        "POST and GET count as two); 0: as fast as the service answers")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replicate-users", type=int, default=1, metavar="K",
                        help="serve every scheduled user K times under new keys (K x the users)")
    parser.add_argument("--baseline-rev", default=None, help="also measure the service of this git revision "
                        "first, on the same data, and print the ratios")
    args = parser.parse_args()

    settings = Settings.from_env()
    if args.data_root is not None:
        settings = Settings.from_env({**os.environ, "AD_DATA_ROOT": str(args.data_root)})
    keys, user_id_of, schedule_date = scheduled_users(settings)
    posting_users = sorted(user_id_of.items())
    rng = random.Random(args.seed)
    start_ts = pd.Timestamp(schedule_date) + pd.Timedelta(hours=8)
    first_event_id = 8_000_000_000_000_000 + rng.randrange(10**12)  # far from the simulator's ids
    catalog = pd.read_parquet(sorted((settings.landing_dir / "ads").rglob("*.parquet"))[0],
                              columns=["category_id", "brand_id"]).drop_duplicates().to_numpy().tolist()
    token = secrets.token_urlsafe(24)

    def get(number: int) -> list:
        return [("cached", "GET", f"/users/{rng.choice(keys)}/ads", None)]

    event_numbers = itertools.count()  # every posted event new (a duplicate would be acknowledged, not stored)

    def event(user_id: int) -> dict:
        category_id, brand_id = rng.choice(catalog)
        number = next(event_numbers)
        ts = (start_ts + pd.Timedelta(milliseconds=number)).isoformat()
        return {"behavior_events": [{"event_id": first_event_id + number, "user_id": user_id, "ts": ts,
                                     "event_type": "view", "item_id": rng.randrange(1, 10**6),
                                     "category_id": int(category_id), "brand_id": int(brand_id)}]}

    def post(number: int) -> list:
        return [("post", "POST", "/events", event(rng.choice(posting_users)[1]))]

    def post_then_get(number: int) -> list:
        key, user_id = rng.choice(posting_users)
        return [("post", "POST", "/events", event(user_id)),
                ("fresh", "GET", f"/users/{key}/ads", None)]

    def measure(code: Path, root: Path) -> tuple[pd.DataFrame, float, float]:
        """(table per path, snapshot load s, peak GiB) of the service in `code` on `root`."""
        env = {**os.environ, "AD_DATA_ROOT": str(root), "DAGSTER_HOME": str(root / "dagster_home")}
        started = time.perf_counter()
        with running_service(root / f"service-{code.name}.log", token, env=env, cwd=code) as service:
            load_s = time.perf_counter() - started
            rows = []
            with PeakMemory(service.process.pid) as memory:
                for label, work in (("cached", get), ("post", post), ("fresh", post_then_get)):
                    # Each path warmed up first (its first requests build caches and open files).
                    units = {"fresh": args.requests // 2}.get(label, args.requests)
                    rate = args.rate / 2 if label == "fresh" else args.rate
                    asyncio.run(_drive(service.base, token, args.concurrency, args.warmup, rate, work))
                    measured = asyncio.run(_drive(service.base, token, args.concurrency, units, rate, work))
                    rows.append(_row(label, measured))
        return pd.DataFrame(rows), load_s, memory.peak / 2**30

    with tempfile.TemporaryDirectory(prefix="serving-load-") as scratch:
        scratch = Path(scratch)
        if args.replicate_users > 1:
            root = replicated_copy(settings, scratch / "root", args.replicate_users)
        else:
            root = serving_copy(settings, scratch / "root")
        codes = [("this checkout", REPO)]
        if args.baseline_rev:  # the same load on the code of another commit, in a worktree, first
            worktree = scratch / "baseline"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.baseline_rev],
                           check=True, capture_output=True)
            codes.insert(0, (f"baseline {args.baseline_rev}", worktree))
        try:
            results = {name: measure(code, root) for name, code in codes}
        finally:
            if args.baseline_rev:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)

    sent = f"{args.rate:.0f} requests/s sent" if args.rate else "closed loop"
    users = len(keys) * args.replicate_users
    print(f"service on {users:,} scheduled users ({schedule_date}), {sent}, at most {args.concurrency} in flight, "
          f"{args.requests:,} requests per path, {os.cpu_count()} cores shared with the client")
    for name, (table, load_s, peak_gib) in results.items():
        print(f"\n{name}: snapshot load {load_s:.1f} s, peak memory {peak_gib:.2f} GiB")
        print(table.to_markdown(index=False, floatfmt=".1f"))
    if args.baseline_rev:
        (before, *_), (after, *_) = results.values()
        ratio = before.set_index("path")[["p50 ms", "p99 ms"]] / after.set_index("path")[["p50 ms", "p99 ms"]]
        print("\nbaseline / this checkout (latency ratio, higher is better):")
        print(ratio.to_markdown(floatfmt=".1f"))
    by_path = results["this checkout"][0].set_index("path")
    rate = min(by_path.loc["cached", "req/s"], by_path.loc["fresh", "req/s"])
    print(f"serving: cached p99 {by_path.loc['cached', 'p99 ms']:.1f} ms, fresh p99 {by_path.loc['fresh', 'p99 ms']:.1f} "
          f"ms at {rate:.0f} req/s; post p99 {by_path.loc['post', 'p99 ms']:.1f} ms")


if __name__ == "__main__":
    main()
