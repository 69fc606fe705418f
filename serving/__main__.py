"""`python -m serving [--host H] [--port P]`: serve the latest schedule (run `make demo` first)."""
from __future__ import annotations

import argparse

import uvicorn

from ml.settings import Settings
from serving.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(Settings.from_env()), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
