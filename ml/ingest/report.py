"""What one ingest run did, per file and per table-partition (returned to callers, shown as metadata)."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileIngestReport:
    source_file: str
    status: str  # "loaded" or "failed"
    rows_in: int | None  # None when the file could not be read at all
    rows_accepted: int
    rows_quarantined: int
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    ignored_columns: tuple[str, ...] = ()

    @property
    def balanced(self) -> bool:
        if self.status == "failed":
            return self.rows_accepted == 0 and self.rows_quarantined == 0
        return self.rows_in == self.rows_accepted + self.rows_quarantined


@dataclass(frozen=True)
class TableIngestReport:
    table: str
    partition_date: dt.date
    files: list[FileIngestReport]
    landing_folder_found: bool
    duration_seconds: float
    skipped_files: list[str] = field(default_factory=list)  # hidden markers such as _SUCCESS

    @property
    def failed_files(self) -> list[FileIngestReport]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def rows_in(self) -> int:
        return sum(f.rows_in or 0 for f in self.files)

    @property
    def rows_accepted(self) -> int:
        return sum(f.rows_accepted for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def quarantined_by_rule(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for file_report in self.files:
            totals.update(file_report.quarantined_by_rule)
        return dict(sorted(totals.items()))

    def as_metadata(self) -> dict[str, object]:
        """Flat, JSON-friendly summary for orchestration metadata and logs."""
        return {
            "table": self.table,
            "partition_date": self.partition_date.isoformat(),
            "landing_folder_found": self.landing_folder_found,
            "files": len(self.files),
            "rows_in": self.rows_in,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "quarantined_by_rule": self.quarantined_by_rule,
            "failed_files": {f.source_file: f.error for f in self.failed_files},
            "skipped_files": list(self.skipped_files),
            "duration_seconds": round(self.duration_seconds, 3),
        }
