"""Validated, idempotent ingestion of landing files into DuckDB raw tables with a quarantine."""
from ml.ingest.contract import CONTRACT_TABLES, CONTRACTS, TableContract, get_contract
from ml.ingest.load import ParentPartitionNotLoaded, ingest_day, ingest_table_partition
from ml.ingest.reconcile import reconcile_partition
from ml.ingest.report import FileIngestReport, TableIngestReport
from ml.ingest.schema import ensure_raw_schema

__all__ = [
    "CONTRACT_TABLES",
    "CONTRACTS",
    "FileIngestReport",
    "ParentPartitionNotLoaded",
    "TableContract",
    "TableIngestReport",
    "ensure_raw_schema",
    "get_contract",
    "ingest_day",
    "ingest_table_partition",
    "reconcile_partition",
]
