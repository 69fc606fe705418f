"""Retention: landing files and raw rows older than a number of days are deleted (marts and models are
rebuilt from what remains). `dry_run` lists what would go without touching anything."""
from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field

from ml.ingest.contract import CONTRACT_TABLES
from ml.settings import Settings
from ml.warehouse import connect, table_exists


@dataclass
class RetentionReport:
    cutoff: dt.date  # partitions strictly before it are deleted
    dry_run: bool
    landing_folders: list[str] = field(default_factory=list)
    raw_rows: dict[str, int] = field(default_factory=dict)


def apply_retention(settings: Settings, keep_days: int, today: dt.date, dry_run: bool = True) -> RetentionReport:
    """Delete (or with `dry_run` only list) landing partitions and raw rows dated before today - keep_days."""
    if keep_days < 1:
        raise ValueError(f"keep_days must be at least 1, got {keep_days}")
    report = RetentionReport(cutoff=today - dt.timedelta(days=keep_days), dry_run=dry_run)
    for table in CONTRACT_TABLES:
        for folder in sorted((settings.landing_dir / table).glob("date=*")):
            try:
                day = dt.date.fromisoformat(folder.name.removeprefix("date="))
            except ValueError:
                continue  # not a partition folder: not ours to delete
            if day < report.cutoff:
                report.landing_folders.append(str(folder.relative_to(settings.data_root)))
                if not dry_run:
                    shutil.rmtree(folder)
    if not settings.warehouse_path.exists():
        return report
    with connect(settings.warehouse_path, read_only=dry_run) as conn:
        for table in [*(f"raw.{t}" for t in CONTRACT_TABLES), "raw.quarantine", "raw.ingest_files"]:
            if not table_exists(conn, table):
                continue
            column = "_partition_date" if table.removeprefix("raw.") in CONTRACT_TABLES else "partition_date"
            verb = "select count(*) from" if dry_run else "delete from"
            (count,) = conn.execute(f"{verb} {table} where {column} < ?", [report.cutoff]).fetchall()[0]
            report.raw_rows[table] = int(count)
    return report
