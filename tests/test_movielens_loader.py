"""MovieLens-100k as RecBole ships it: read from an installed copy or straight from the wheel zip."""
from __future__ import annotations

import zipfile

import pytest

from ml.datasets.movielens import (
    MEMBER_DIR, find_ml100k, load_ml100k_interactions, load_ml100k_items, load_ml100k_users,
)


@pytest.fixture(scope="module")
def ml100k_source():
    try:
        return find_ml100k()
    except FileNotFoundError as error:  # no recbole installed and no registry: nothing to check
        pytest.skip(str(error))


def test_full_dataset_counts(ml100k_source):
    interactions = load_ml100k_interactions(ml100k_source)
    assert len(interactions) == 100_000
    assert interactions.user_id.nunique() == 943 and interactions.item_id.nunique() == 1682
    assert list(interactions.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert interactions.rating.between(1, 5).all()
    assert len(load_ml100k_items(ml100k_source)) == 1682
    users = load_ml100k_users(ml100k_source)
    assert len(users) == 943 and {"age", "gender", "occupation"} <= set(users.columns)


def test_reads_straight_from_a_wheel_zip(tmp_path):
    wheel = tmp_path / "recbole-1.2.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{MEMBER_DIR}/ml-100k.inter",
                         "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t881250949\n2\t11\t5\t881250950\n")
    interactions = load_ml100k_interactions(wheel)
    assert interactions.to_dict("list") == {"user_id": [1, 2], "item_id": [10, 11], "rating": [4.0, 5.0],
                                            "timestamp": [881250949, 881250950]}
    assert find_ml100k(cache_dir=tmp_path) is not None
