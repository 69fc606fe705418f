"""MovieLens-100k from the copy RecBole ships in its wheel (RecBole atomic files: .inter/.item/.user).

The data is read where it lies: an installed `recbole` package, the benchmark venv, or the wheel
downloaded once into a cache folder and read straight from the zip. Nothing is copied into the repo.
"""
from __future__ import annotations

import csv
import importlib.util
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

from ml.settings import REPO_ROOT, Settings

RECBOLE_WHEEL_VERSION = "1.2.1"
MEMBER_DIR = "recbole/dataset_example/ml-100k"


def _installed_copies() -> list[Path]:
    candidates = []
    spec = importlib.util.find_spec("recbole")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "dataset_example" / "ml-100k" for p in spec.submodule_search_locations]
    # The RecBole benchmark venv (benchmarks/setup_recbole_env.sh) also holds a copy.
    bench_venv = Settings.from_env().data_root / "bench-venv"
    candidates += sorted(bench_venv.glob(f"lib/python*/site-packages/{MEMBER_DIR}"))
    return [path for path in candidates if (path / "ml-100k.inter").is_file()]


def _default_cache_dir() -> Path:
    return Settings.from_env().data_root / "cache" / "movielens"


def _cached_wheels(cache_dir: Path) -> list[Path]:
    """The wheel in `cache_dir`, else in the repo's default data root (a demo or test that points
    AD_DATA_ROOT elsewhere still finds the copy downloaded once)."""
    repo_cache = REPO_ROOT / ".data" / "cache" / "movielens"
    for folder in (cache_dir, repo_cache):
        wheels = sorted(folder.glob(f"recbole-{RECBOLE_WHEEL_VERSION}-*.whl"))
        if wheels:
            return wheels
    return []


def find_ml100k(cache_dir: Path | None = None) -> Path:
    """A folder holding ml-100k.{inter,item,user}, or the RecBole wheel (a zip) that contains them."""
    installed = _installed_copies()
    if installed:
        return installed[0]
    cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    wheels = _cached_wheels(cache_dir)
    if not wheels:
        cache_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", f"recbole=={RECBOLE_WHEEL_VERSION}", "--no-deps",
                   "--quiet", "-d", str(cache_dir)]
        completed = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(cache_dir.glob(f"recbole-{RECBOLE_WHEEL_VERSION}-*.whl"))
        if completed.returncode != 0 or not wheels:
            raise FileNotFoundError(
                f"MovieLens-100k not found: no installed recbole package and `{' '.join(command)}` failed "
                f"({completed.stderr.strip()[-300:]}). Install recbole or put its wheel in {cache_dir}."
            )
    return wheels[0]


def _read_atomic(kind: str, source: Path | None) -> pd.DataFrame:
    source = Path(source) if source is not None else find_ml100k()
    name = f"ml-100k.{kind}"
    if source.is_dir():
        text = (source / name).read_bytes()
    else:
        with zipfile.ZipFile(source) as wheel:
            text = wheel.read(f"{MEMBER_DIR}/{name}")
    frame = pd.read_csv(io.BytesIO(text), sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8",
                        encoding_errors="replace")
    # RecBole headers carry the field type ("item_id:token"); keep only the name.
    return frame.rename(columns=lambda column: column.split(":")[0])


def load_ml100k_interactions(source: Path | None = None) -> pd.DataFrame:
    """user_id, item_id, rating, timestamp (unix seconds), in file order."""
    frame = _read_atomic("inter", source)
    return frame.astype({"user_id": "int64", "item_id": "int64", "rating": "float64", "timestamp": "int64"})[
        ["user_id", "item_id", "rating", "timestamp"]]


def load_ml100k_items(source: Path | None = None) -> pd.DataFrame:
    """item_id, movie_title, release_year, class (space-separated genres)."""
    return _read_atomic("item", source).astype({"item_id": "int64"})


def load_ml100k_users(source: Path | None = None) -> pd.DataFrame:
    """user_id, age, gender, occupation, zip_code."""
    return _read_atomic("user", source).astype({"user_id": "int64"})
