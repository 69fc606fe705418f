"""python -m ml.privacy forget --user-id 123 [--user-id 456 ...]
   python -m ml.privacy retention --keep-days 730 [--apply]"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import urllib.request

from ml.privacy.erasure import forget_users
from ml.privacy.retention import apply_retention
from ml.settings import Settings


def reload_service(base_url: str) -> int:
    """POST /reload to a running service with the write token; the HTTP status."""
    request = urllib.request.Request(f"{base_url.rstrip('/')}/reload?wait_seconds=60", method="POST", data=b"",
                                     headers={"Authorization": f"Bearer {os.environ.get('ADFLOW_SERVING_TOKEN', '')}"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.status


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ml.privacy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    forget = commands.add_parser("forget", help="erase users everywhere under the data root and suppress them")
    forget.add_argument("--user-id", type=int, action="append", required=True, help="a raw user_id (repeatable)")
    forget.add_argument("--reload-service", metavar="URL", help="then POST URL/reload (token from "
                        "ADFLOW_SERVING_TOKEN) so a running service drops them from memory too")
    retention = commands.add_parser("retention", help="delete landing files and raw rows older than --keep-days")
    retention.add_argument("--keep-days", type=int, required=True)
    retention.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    retention.add_argument("--apply", action="store_true", help="delete (default: dry run, list only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if args.command == "forget":
        report = forget_users(settings, args.user_id)
        print(json.dumps({"users": report.users, "rows_removed": report.rows_removed,
                          "tables": {k: v for k, v in report.table_rows.items() if v}, "files": report.file_rows},
                         indent=1))
        if args.reload_service:
            print(f"service reloaded: {reload_service(args.reload_service)}")
        else:
            print("A running service still holds them in memory until POST /reload (or --reload-service).")
    else:
        report = apply_retention(settings, args.keep_days, args.today, dry_run=not args.apply)
        print(json.dumps({"cutoff": report.cutoff.isoformat(), "dry_run": report.dry_run,
                          "landing_folders": report.landing_folders, "raw_rows": report.raw_rows}, indent=1))


if __name__ == "__main__":
    main()
