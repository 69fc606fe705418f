"""Ingest + dbt build on simulated events, against a bare DuckDB copy of the same files.

    .venv/bin/python benchmarks/ingest_dbt.py --scale full      # ~10M events
    .venv/bin/python benchmarks/ingest_dbt.py --scale small     # ~1M events, a quick check

The landing files are simulated once per scale and cached under --data-dir (reused when the
simulation config matches). Every stage then runs in the same invocation, each in its own child
process so that its peak RSS and CPU time are its own (os.wait4 reports them per child, including
the child's own children, e.g. dbt's):

  bare    plain DuckDB: CREATE TABLE AS SELECT * FROM read_parquet(<all files of the table>) per
          table into a fresh file -- the floor any loader has to pay for reading and writing;
  ingest  the product: ml.ingest.ingest_day for every day into a fresh warehouse;
  dbt     `dbt build --exclude tag:scoring` as of the last day on that warehouse;
  rerun   (with --rerun) dbt build again on the built warehouse: the same day (a re-materialized
          partition), the day before (a backfill) and the last day again, checking after each that
          every model holds exactly the rows of a fresh build as of that day (incremental models
          must be idempotent).

The machine is shared and timings are noisy, so each stage is reported as a ratio to the bare
floor measured in the same run; CPU seconds (user + sys) are less sensitive to load than wall time.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"
DEFAULT_DATA_DIR = REPO_ROOT / ".data" / "bench" / "ingest_dbt"
TABLES = ("users", "campaigns", "ads", "behavior_events", "ad_events")

# Simulation sizes: "full" gave 10.0M events (8.0M behavior, 2.0M ad) in ~150 s.
SCALES = {
    "small": dict(n_users=4200, n_ads=500, n_campaigns=60, n_days=14),
    "full": dict(n_users=42000, n_ads=2000, n_campaigns=200, n_days=14),
}
TARGET_SECONDS, TARGET_RATIO, TARGET_RSS_GIB = 120.0, 3.0, 8.0


@dataclass
class Stage:
    name: str
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    rows: int
    note: str = ""


# ---------------------------------------------------------------- child-process stage bodies


def simulate_stage(scale: str, root: Path) -> dict:
    from ml.simulator import SimulationConfig, simulate

    summary = simulate(SimulationConfig(**SCALES[scale]), root, progress=False)
    return {
        "events": summary.total_events,
        "rows": {t: summary.total_rows(t) for t in TABLES},
        "days": sorted({d.isoformat() for counts in summary.rows.values() for d in counts}),
        "seconds": summary.elapsed_seconds,
    }


def bare_stage(landing_dir: Path, warehouse: Path, preserve_insertion_order: bool = True) -> dict:
    import duckdb

    rows = 0
    started = time.perf_counter()
    with duckdb.connect(str(warehouse), config={"preserve_insertion_order": preserve_insertion_order}) as conn:
        for table in TABLES:
            files = sorted(str(p) for p in (landing_dir / table).glob("date=*/*.parquet"))
            conn.execute(f"create table {table} as select * from read_parquet(?)", [files])
            rows += conn.execute(f"select count(*) from {table}").fetchone()[0]
        conn.execute("checkpoint")
    return {"seconds": time.perf_counter() - started, "rows": rows}


def ingest_stage(landing_dir: Path, warehouse: Path, days: list[str]) -> dict:
    from ml.ingest import ingest_day
    from ml.warehouse import connect

    started = time.perf_counter()
    with connect(warehouse) as conn:
        for day in days:
            for report in ingest_day(conn, landing_dir, dt.date.fromisoformat(day)):
                if report.failed_files:
                    raise RuntimeError(f"{report.table} {day}: unreadable files {report.failed_files}")
        conn.execute("checkpoint")
        rows = sum(conn.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in TABLES)
        quarantined = conn.execute("select count(*) from raw.quarantine").fetchone()[0]
    return {"seconds": time.perf_counter() - started, "rows": rows, "quarantined": quarantined}


# ---------------------------------------------------------------- parent: run and measure children


def run_child(args: list[str], env: dict[str, str] | None = None, log_path: Path | None = None) -> tuple[float, object, str]:
    """Run a child to completion; return its wall seconds, its rusage (wait4: this child and the
    children it waited for) and its stdout."""
    started = time.perf_counter()
    stdout = open(log_path, "w") if log_path else subprocess.PIPE
    process = subprocess.Popen(args, env=env, stdout=stdout, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    output = process.stdout.read() if log_path is None else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if log_path:
        stdout.close()
        output = log_path.read_text()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} ... exited {process.returncode}:\n{output[-6000:]}")
    return seconds, usage, output


def run_python_stage(stage: str, payload: dict) -> tuple[dict, object]:
    _, usage, output = run_child([sys.executable, __file__, "--child", stage, json.dumps(payload)])
    return json.loads(output.strip().splitlines()[-1]), usage


def cpu_seconds(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def peak_rss_bytes(usage) -> int:
    return usage.ru_maxrss * 1024  # Linux reports KiB


def ensure_landing(scale: str, root: Path) -> dict:
    marker = root / "simulation.json"
    config = SCALES[scale]
    if marker.exists():
        cached = json.loads(marker.read_text())
        if cached.get("config") == config and (root / "landing").is_dir():
            print(f"reusing landing files in {root / 'landing'} ({cached['events']:,} events)", flush=True)
            return cached
    print(f"simulating {scale} scale into {root} ...", flush=True)
    root.mkdir(parents=True, exist_ok=True)
    result, _ = run_python_stage("simulate", {"scale": scale, "root": str(root)})
    result["config"] = config
    marker.write_text(json.dumps(result, indent=1))
    print(f"simulated {result['events']:,} events in {result['seconds']:.0f} s", flush=True)
    return result


def fresh(path: Path) -> Path:
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def dbt_env(warehouse: Path) -> dict[str, str]:
    return {**os.environ, "AD_WAREHOUSE_PATH": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def dbt_build(
    warehouse: Path, as_of: str, work_dir: Path, label: str, project_dir: Path = DBT_PROJECT_DIR
) -> tuple[Stage, list[tuple[str, float]]]:
    target = work_dir / f"dbt_target_{label}"
    args = [str(DBT_EXECUTABLE), "build", "--exclude", "tag:scoring",
            "--vars", json.dumps({"as_of_date": as_of}),
            "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
            "--target-path", str(target), "--log-path", str(work_dir / "dbt_logs")]
    seconds, usage, output = run_child(args, env=dbt_env(warehouse), log_path=work_dir / f"dbt_{label}.log")
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = sorted(((r["unique_id"], r["execution_time"]) for r in results), key=lambda item: -item[1])
    summary_line = next((line for line in reversed(output.splitlines()) if "PASS=" in line), "")
    stage = Stage(f"dbt build ({label})", seconds, cpu_seconds(usage), peak_rss_bytes(usage), len(results),
                  summary_line.split("Done. ")[-1].strip())
    return stage, nodes


def model_fingerprints(warehouse: Path) -> dict[str, tuple[int, int]]:
    """Row count and an order-independent content hash of every dbt relation in schema main.

    Doubles are rounded to 9 decimals first: a parallel SUM adds in a different order each run, so
    the last bits of e.g. a spend total differ between two builds of the same rows."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        relations = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'main' order by 1"
        ).fetchall()]
        fingerprints = {}
        for relation in relations:
            columns = [
                f"round({quoted}, 9)" if data_type in ("DOUBLE", "FLOAT") else quoted
                for name, data_type in conn.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_schema = 'main' and table_name = ? order by ordinal_position", [relation]
                ).fetchall()
                for quoted in ['"' + name.replace('"', '""') + '"']
            ]
            fingerprints[relation] = tuple(conn.execute(
                f"select count(*), coalesce(sum(hash({', '.join(columns)})), 0) from main.{relation}"
            ).fetchone())
        return fingerprints


def gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.2f}"


def render(stages: list[Stage], floor: Stage) -> str:
    lines = ["| stage | seconds | ratio to bare | CPU s | peak RSS GiB | rows (dbt: nodes) | note |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for s in stages:
        lines.append(f"| {s.name} | {s.seconds:.1f} | {s.seconds / floor.seconds:.2f} | {s.cpu_seconds:.1f} | "
                     f"{gib(s.peak_rss_bytes)} | {s.rows:,} | {s.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--rerun", action="store_true",
                        help="then build the last day again, the day before (a backfill) and the last day again, "
                             "checking that the last-day builds hold exactly the rows of the fresh build")
    parser.add_argument("--baseline-project", type=Path,
                        help="another dbt project dir (e.g. `git archive <rev> dbt_project | tar -x -C /tmp/base`) to "
                             "build on a copy of the same ingested warehouse: its time is reported beside ours and "
                             "every model it shares with ours must hold the same rows")
    parser.add_argument("--keep-warehouses", action="store_true", help="keep the DuckDB files for inspection")
    args = parser.parse_args(argv)

    root = args.data_dir / args.scale
    simulation = ensure_landing(args.scale, root)
    landing_dir, days = root / "landing", simulation["days"]
    print(f"events: {simulation['events']:,} ({simulation['rows']['behavior_events']:,} behavior, "
          f"{simulation['rows']['ad_events']:,} ad) over {len(days)} days; load average {os.getloadavg()[0]:.1f}",
          flush=True)

    bare_db, warehouse = fresh(root / "bare.duckdb"), fresh(root / "warehouse.duckdb")
    # The floor is the faster of two plain copies: with DuckDB's default settings, and without
    # insertion order kept (the setting the product's own connections and dbt profile use).
    floors = []
    for keep_order in (True, False):
        bare, usage = run_python_stage("bare", {"landing": str(landing_dir), "warehouse": str(fresh(bare_db)),
                                                "preserve_insertion_order": keep_order})
        floors.append(Stage(f"bare floor: read_parquet -> CREATE TABLE (preserve_insertion_order={keep_order})",
                            bare["seconds"], cpu_seconds(usage), peak_rss_bytes(usage), bare["rows"]))
        print(f"{floors[-1].name} {floors[-1].seconds:.1f} s", flush=True)
    floor = min(floors, key=lambda stage: stage.seconds)

    ingested, usage = run_python_stage("ingest", {"landing": str(landing_dir), "warehouse": str(warehouse), "days": days})
    ingest = Stage(f"ingest_day x {len(days)} days", ingested["seconds"], cpu_seconds(usage), peak_rss_bytes(usage),
                   ingested["rows"], f"{ingested['quarantined']:,} quarantined")
    print(f"ingest {ingest.seconds:.1f} s", flush=True)

    failures = []
    baseline_stages = []
    if args.rerun:
        # Raw only: the reference for the backfill check below is a fresh build as of the day before.
        raw_only_db = fresh(root / "warehouse_raw_only.duckdb")
        shutil.copyfile(warehouse, raw_only_db)
    if args.baseline_project:
        # Built first, on a copy taken before our build touches the warehouse.
        baseline_db = fresh(root / "warehouse_baseline.duckdb")
        shutil.copyfile(warehouse, baseline_db)
        baseline, _ = dbt_build(baseline_db, days[-1], root, "baseline", args.baseline_project.resolve())
        baseline.name = f"dbt build, baseline project {args.baseline_project}"
        print(f"baseline dbt build {baseline.seconds:.1f} s", flush=True)
        baseline_stages.append(baseline)

    build, nodes = dbt_build(warehouse, days[-1], root, "fresh")
    print(f"dbt build {build.seconds:.1f} s", flush=True)
    total = Stage("ingest + dbt build", ingest.seconds + build.seconds, ingest.cpu_seconds + build.cpu_seconds,
                  max(ingest.peak_rss_bytes, build.peak_rss_bytes), ingest.rows)
    stages = [*floors, ingest, *baseline_stages, build, total]

    if args.baseline_project:
        ours, theirs = model_fingerprints(warehouse), model_fingerprints(baseline_db)
        differing = sorted(name for name in theirs if name in ours and ours[name] != theirs[name])
        missing = sorted(set(theirs) - set(ours))
        build.note += "; same rows as baseline" if not (differing or missing) else (
            f"; DIFFERS from baseline: {', '.join(differing + missing)}")
        failures += differing + missing
        if not args.keep_warehouses:
            fresh(baseline_db)

    if args.rerun:
        # The daily job re-materializes a partition (same day again) and backfills (an earlier day,
        # then forward again); incremental models must end where a fresh build of the day ends.
        fresh_build = model_fingerprints(warehouse)
        reference, _ = dbt_build(raw_only_db, days[-2], root, "fresh_day_before")
        fresh_day_before = model_fingerprints(raw_only_db)
        fresh(raw_only_db)
        steps = (("rerun same day", days[-1], fresh_build), ("backfill day before", days[-2], fresh_day_before),
                 ("forward again", days[-1], fresh_build))
        for label, as_of, expected in steps:
            step, _ = dbt_build(warehouse, as_of, root, label.replace(" ", "_"))
            step.name = f"dbt build ({label}, as of {as_of})"
            now = model_fingerprints(warehouse)
            changed = sorted(t for t in expected if expected[t] != now.get(t))
            step.note += f"; same rows as a fresh build as of {as_of}" if not changed else f"; DIFFERS: {', '.join(changed)}"
            failures += changed
            stages.append(step)
            print(f"{step.name} {step.seconds:.1f} s", flush=True)

    print()
    print(f"{simulation['events']:,} events, {len(days)} days, scale {args.scale}, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(render(stages, floor))
    print()
    print("slowest dbt nodes (fresh build, seconds):")
    for unique_id, seconds in nodes[:12]:
        print(f"  {seconds:7.1f}  {unique_id}")
    print()
    verdict = [
        f"ingest + dbt {total.seconds:.0f} s (target <= {TARGET_SECONDS:.0f})",
        f"{total.seconds / floor.seconds:.1f}x bare (target <= {TARGET_RATIO:.0f}x)",
        f"peak RSS {gib(total.peak_rss_bytes)} GiB (target <= {TARGET_RSS_GIB:.0f})",
    ]
    print("; ".join(verdict))
    result = {"scale": args.scale, "events": simulation["events"], "stages": [s.__dict__ for s in stages],
              "slowest_nodes": nodes[:20], "finished_at": dt.datetime.now().isoformat(timespec="seconds")}
    (root / "result.json").write_text(json.dumps(result, indent=1))
    if not args.keep_warehouses:
        fresh(bare_db)
    return 1 if failures else 0


def child_main(stage: str, payload: dict) -> None:
    if stage == "simulate":
        result = simulate_stage(payload["scale"], Path(payload["root"]))
    elif stage == "bare":
        result = bare_stage(Path(payload["landing"]), Path(payload["warehouse"]),
                            payload.get("preserve_insertion_order", True))
    elif stage == "ingest":
        result = ingest_stage(Path(payload["landing"]), Path(payload["warehouse"]), payload["days"])
    else:
        raise SystemExit(f"unknown stage {stage}")
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(sys.argv[2], json.loads(sys.argv[3]))
    else:
        sys.exit(main())
