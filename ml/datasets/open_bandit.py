"""Open Bandit Dataset (ZOZOTOWN, Saito et al. 2021): the small sample that ships inside OBP's sdist.

The obp 0.5.7 source archive on PyPI holds 10,000 logged rows for each of two logging policies
(`random`: uniform over items; `bts`: Bernoulli Thompson sampling) and three campaigns (`all`, `men`,
`women`), plus the item features and the Thompson-sampling prior ZOZOTOWN ran with. The archive is
downloaded once with pip into `<data root>/external/obp/` and read straight from the tar.gz.

One row is one (impression, position): an item shown at one of 3 slots, whether it was clicked,
and the logging policy's probability of showing that item at that slot (`propensity_score`).
"""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ml.settings import Settings

OBP_VERSION = "0.5.7"
POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
N_POSITIONS = 3  # OBD's recommendation list: three slots, logged as position 1..3
PRIOR_MEMBER = "obp/policy/conf/prior_bts.yaml"


@dataclass(frozen=True)
class OpenBanditLogs:
    """One logging policy's rows for one campaign, sorted by time (as OBP's loader does)."""

    policy: str
    campaign: str
    actions: np.ndarray  # item_id, 0..n_actions-1
    positions: np.ndarray  # slot, 0-based
    rewards: np.ndarray  # click, 0/1
    propensities: np.ndarray  # logging policy's probability of this item at this slot
    timestamps: np.ndarray
    item_context: pd.DataFrame  # item_id + item_feature_*
    n_actions: int
    n_positions: int = N_POSITIONS

    @property
    def n_rounds(self) -> int:
        return len(self.actions)


def default_cache_dir() -> Path:
    return Settings.from_env().data_root / "external" / "obp"


def find_obp_sdist(cache_dir: Path | None = None, download: bool = True) -> Path:
    """The cached obp sdist; downloaded with pip (source archive only, no install) when missing."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    archive = cache_dir / f"obp-{OBP_VERSION}.tar.gz"
    if archive.is_file() or not download:
        if not archive.is_file():
            raise FileNotFoundError(f"{archive} is not cached")
        return archive
    cache_dir.mkdir(parents=True, exist_ok=True)
    # obp's wheel does not install on Python 3.11; its sdist is only read, never built or installed.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--ignore-requires-python", "--quiet", f"obp=={OBP_VERSION}", "-d", str(cache_dir)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0 or not archive.is_file():
        raise FileNotFoundError(f"Open Bandit Dataset not cached and `{' '.join(command)}` failed "
                                f"({completed.stderr.strip()[-300:]}). Put obp-{OBP_VERSION}.tar.gz in {cache_dir}.")
    return archive


def _read_member(archive: Path, suffix: str) -> bytes:
    """The archive member whose path ends with `suffix` (the sdist nests it under obp-<version>/obp/...)."""
    with tarfile.open(archive, "r:gz") as tar:
        matches = [m for m in tar.getmembers() if m.isfile() and ("/" + m.name).endswith("/" + suffix)]
        if len(matches) != 1:
            raise FileNotFoundError(f"expected one member ending in {suffix!r} in {archive}, found {len(matches)}")
        return tar.extractfile(matches[0]).read()


def _check_names(policy: str, campaign: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; Open Bandit has {POLICIES}")
    if campaign not in CAMPAIGNS:
        raise ValueError(f"unknown campaign {campaign!r}; Open Bandit has {CAMPAIGNS}")


def load_open_bandit(policy: str, campaign: str, archive: Path | None = None) -> OpenBanditLogs:
    _check_names(policy, campaign)
    archive = Path(archive) if archive is not None else find_obp_sdist()
    folder = f"obd/{policy}/{campaign}"
    rows = pd.read_csv(io.BytesIO(_read_member(archive, f"{folder}/{campaign}.csv")), index_col=0)
    items = pd.read_csv(io.BytesIO(_read_member(archive, f"{folder}/item_context.csv")), index_col=0)
    rows = rows.sort_values("timestamp", kind="stable")
    positions = rows["position"].to_numpy(dtype=np.int64) - 1
    if ((positions < 0) | (positions >= N_POSITIONS)).any():
        raise ValueError(f"{folder}: positions outside 1..{N_POSITIONS}")
    propensities = rows["propensity_score"].to_numpy(dtype=float)
    if not ((propensities > 0) & (propensities <= 1)).all():
        raise ValueError(f"{folder}: propensity_score outside (0, 1]")
    actions = rows["item_id"].to_numpy(dtype=np.int64)
    return OpenBanditLogs(
        policy=policy, campaign=campaign, actions=actions, positions=positions,
        rewards=rows["click"].to_numpy(dtype=float), propensities=propensities,
        timestamps=rows["timestamp"].to_numpy(), item_context=items.reset_index(drop=True),
        n_actions=int(max(len(items), actions.max() + 1)),
    )


def load_bts_prior(campaign: str, archive: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, beta) of the Beta prior per item that ZOZOTOWN's Bernoulli TS started from (OBP's
    `BernoulliTS(is_zozotown_prior=True)`)."""
    _check_names("bts", campaign)
    archive = Path(archive) if archive is not None else find_obp_sdist()
    prior = yaml.safe_load(_read_member(archive, PRIOR_MEMBER))[campaign]
    alpha, beta = np.asarray(prior["alpha"], dtype=float), np.asarray(prior["beta"], dtype=float)
    if alpha.shape != beta.shape or (alpha <= 0).any() or (beta <= 0).any():
        raise ValueError(f"prior for {campaign!r}: alpha and beta must be positive and of equal length")
    return alpha, beta


def thompson_sampling_distribution(alpha: np.ndarray, beta: np.ndarray, n_positions: int = N_POSITIONS,
                                   n_samples: int = 1_000_000, seed: int = 0,
                                   chunk: int = 50_000) -> np.ndarray:
    """P(item at slot) of Bernoulli TS with a fixed Beta(alpha, beta) per item, by Monte Carlo.

    Each draw samples every item's click rate from its Beta and shows the top `n_positions` in order;
    counting where each item lands gives an (n_items, n_positions) array whose columns sum to 1.
    As OBP's `BernoulliTS(is_zozotown_prior=True).compute_batch_action_dist` (there 100,000 draws).
    With the prior of `prior_bts.yaml` this is TS at the start of the logged week; the `bts` logs'
    propensities came from posteriors updated during the week and differ from it.
    """
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    n_items = len(alpha)
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_items, n_positions))
    for start in range(0, n_samples, chunk):
        size = min(chunk, n_samples - start)
        draws = rng.beta(alpha, beta, size=(size, n_items))
        top = np.argpartition(-draws, n_positions - 1, axis=1)[:, :n_positions]
        order = np.argsort(-np.take_along_axis(draws, top, axis=1), axis=1)
        ranked = np.take_along_axis(top, order, axis=1)
        for position in range(n_positions):
            counts[:, position] += np.bincount(ranked[:, position], minlength=n_items)
    return counts / n_samples


def uniform_distribution(n_items: int, n_positions: int = N_POSITIONS) -> np.ndarray:
    """The `random` policy as OBP's `Random` evaluation policy defines it: 1 / n_items at every slot."""
    return np.full((n_items, n_positions), 1.0 / n_items)
