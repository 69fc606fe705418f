"""`python -m serving [--host H] [--port P]`: serve the latest schedule (run `make demo` first).

Writes (POST /events, /reload) need the bearer token in ADFLOW_SERVING_TOKEN; without it the
service is read-only and refuses any address but loopback."""
from __future__ import annotations

import argparse
import sys

import torch
import uvicorn

from ml.settings import Settings
from serving.app import create_app
from serving.auth import check_bind, token_from_env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 by default; any other address needs "
                        "ADFLOW_SERVING_TOKEN")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    # A request scores one user: torch's ops are too small to gain from threads and lose to their hand-offs.
    torch.set_num_threads(1)
    # The landing writer thread and the request loop share the GIL: hand it over every 0.5 ms instead
    # of every 5 ms, or a request waits behind a write (measured when the thread also did the
    # bookkeeping: fresh p50 12.1 -> 9.6 ms, benchmarks/serving_load.py).
    sys.setswitchinterval(0.0005)
    token = token_from_env()
    check_bind(args.host, token)  # before the (slow) snapshot load: a refusal is immediate
    uvicorn.run(create_app(Settings.from_env(), token), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
