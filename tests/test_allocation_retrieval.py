"""Candidate retrieval: exact top-N against brute force, and exploration picks."""
import numpy as np
import pandas as pd

from ml.allocation.candidates import retrieve_candidates
from ml.allocation.config import AllocationConfig


def _embeddings(n_users=300, n_ads=120, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_key": [f"u{i}" for i in range(n_users)],
                          "embedding": list(rng.normal(size=(n_users, dim)).astype(np.float32))})
    ads = pd.DataFrame({"ad_id": np.arange(1000, 1000 + n_ads), "embedding": list(rng.normal(size=(n_ads, dim)))})
    eligible = pd.DataFrame({"ad_id": ads["ad_id"], "campaign_id": ads["ad_id"] // 10})
    return users, ads, eligible


def test_interest_candidates_are_the_true_top_n():
    users, ads, eligible = _embeddings()
    eligible = eligible.iloc[::2]  # only half the ads may be shown
    config = AllocationConfig(candidates_per_user=15, exploration_per_user=0, retrieval_chunk_users=64)
    got = retrieve_candidates(users, ads, eligible, config)

    u = np.stack(users["embedding"]); u /= np.linalg.norm(u, axis=1, keepdims=True)
    allowed = ads[ads["ad_id"].isin(eligible["ad_id"])]
    a = np.stack(allowed["embedding"]); a /= np.linalg.norm(a, axis=1, keepdims=True)
    brute = np.argsort(-(u @ a.T), axis=1)[:, :15]
    expected = {(users["user_key"][i], allowed["ad_id"].iloc[j]) for i in range(len(users)) for j in brute[i]}
    assert set(zip(got["user_key"], got["ad_id"])) == expected
    assert (got["source"] == "interest").all()
    assert got.groupby("user_key").size().eq(15).all()
    assert np.allclose(got["retrieval_score"], [float(u[int(k[1:])] @ a[allowed["ad_id"].tolist().index(ad)])
                                                for k, ad in zip(got["user_key"], got["ad_id"])], atol=1e-5)


def test_exploration_adds_fresh_or_under_delivered_ads_not_already_retrieved():
    users, ads, eligible = _embeddings(n_users=200, n_ads=100)
    stats = pd.DataFrame({"ad_id": ads["ad_id"], "impressions_7d": np.arange(100) * 100.0, "ad_age_days": 30.0})
    stats.loc[stats["ad_id"] == 1099, "ad_age_days"] = 2.0  # fresh, though heavily delivered
    config = AllocationConfig(candidates_per_user=10, exploration_per_user=5, seed=3)
    got = retrieve_candidates(users, ads, eligible, config, ad_delivery_stats=stats)
    explore = got[got["source"] == "exploration"]
    pool = set(ads["ad_id"][:25]) | {1099}  # bottom quartile of impressions, plus the fresh ad
    assert set(explore["ad_id"]) <= pool
    assert not got.duplicated(["user_key", "ad_id"]).any()
    assert explore.groupby("user_key").size().between(1, 5).all()
    again = retrieve_candidates(users, ads, eligible, config, ad_delivery_stats=stats)
    pd.testing.assert_frame_equal(got, again)  # seeded


def test_fewer_eligible_ads_than_n_returns_all_of_them():
    users, ads, eligible = _embeddings(n_users=5, n_ads=8)
    got = retrieve_candidates(users, ads, eligible, AllocationConfig(candidates_per_user=50, exploration_per_user=5))
    assert got.groupby("user_key").size().eq(8).all()


def test_category_retrieval_adds_the_most_viewed_categories_ads_not_already_retrieved():
    from ml.allocation.category_candidates import category_candidates

    ads = pd.DataFrame({"ad_id": [1, 2, 3, 4, 5], "category_id": [10, 10, 20, 30, 20],
                        "ad_clicks_7d": [5, 9, 1, 0, 7]})
    views = pd.DataFrame({"user_key": ["a", "a", "b"], "category_id": [20, 10, 30], "events": [4, 1, 2]})
    retrieved = pd.DataFrame({"user_key": ["a"], "ad_id": [5]})
    found = category_candidates(np.array(["a", "b", "c"]), ads, views, per_user=3, retrieved=retrieved)
    by_user = found.groupby("user_key")["ad_id"].apply(list).to_dict()
    # a: category 20 first (4 views; ad 5 already retrieved), then 10's ads, most clicked first
    assert by_user == {"a": [3, 2, 1], "b": [4]}  # c viewed nothing: no category candidates
    assert (found["source"] == "category").all()
    assert found.set_index(["user_key", "ad_id"]).loc[("a", 3), "retrieval_score"] == 4
