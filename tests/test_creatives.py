"""Dynamic creative selection: Thompson probabilities against exact and sampled ones, logged
probabilities against the choices made, priors, regret on a synthetic bandit, report and plot."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from scipy import special

from ml.creatives import ALL_SEGMENTS, CREATIVE_STATS_COLUMNS, ThompsonSelector, creative_stats, thompson_probabilities
from ml.creatives.bandit import simulate_bandit
from ml.creatives.report import creative_report, plot_creative_report, regret_curve

BANDIT_CTR = np.array([0.02, 0.03, 0.04, 0.06])


def _stats(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=CREATIVE_STATS_COLUMNS)


def _exact_two_beta(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    """P(theta_B > theta_A) for integer alpha_B (Evan Miller's closed form), in log space."""
    i = np.arange(alpha_b)
    terms = (special.betaln(alpha_a + i, beta_a + beta_b) - np.log(beta_b + i)
             - special.betaln(1 + i, beta_b) - special.betaln(alpha_a, beta_a))
    return float(np.exp(terms).sum())


def _within_binomial(frequency: np.ndarray, probability: np.ndarray, n: int, sigmas: float = 4.0) -> bool:
    error = np.sqrt(probability * (1 - probability) / n)
    return bool(np.all(np.abs(frequency - probability) <= sigmas * error + 1e-12))


# ---- the probability of being the largest draw -------------------------------------------------------

def test_two_creatives_match_the_closed_form():
    cases = [(31, 970, 45, 1200), (3, 40, 2, 25), (200, 9800, 2100, 97900), (1, 1, 1, 1)]
    for alpha_a, beta_a, alpha_b, beta_b in cases:
        probabilities = thompson_probabilities(np.array([[alpha_a, alpha_b]], float),
                                               np.array([[beta_a, beta_b]], float))
        assert probabilities[0, 1] == pytest.approx(_exact_two_beta(alpha_a, beta_a, alpha_b, beta_b), abs=1e-5)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)


def test_peaked_and_skewed_posteriors_match_monte_carlo():
    # 10^6 impressions (a posterior 1e-4 wide), a no-data prior with alpha < 1 (a pole at 0), a small one.
    alpha = np.array([[0.4 + 20_000, 0.4, 5.0], [0.4, 0.4, 0.4], [0.6 + 30, 0.6 + 28, 0.6 + 1]])
    beta = np.array([[19.6 + 980_000, 19.6, 100.0], [19.6, 19.6, 19.6], [19.4 + 970, 19.4 + 950, 19.4 + 9]])
    probabilities = thompson_probabilities(alpha, beta)
    rng = np.random.default_rng(7)
    draws = 400_000
    for row in range(len(alpha)):
        samples = rng.beta(alpha[row][:, None], beta[row][:, None], size=(3, draws))
        frequency = np.bincount(samples.argmax(axis=0), minlength=3) / draws
        assert _within_binomial(frequency, probabilities[row], draws)
    np.testing.assert_allclose(probabilities[1], 1 / 3, atol=1e-9)  # identical posteriors


# ---- the selector -----------------------------------------------------------------------------------

def _two_ads() -> tuple[pd.DataFrame, pd.DataFrame]:
    catalog = pd.DataFrame({"ad_id": [1, 1, 1, 2, 2, 2, 2, 3],
                            "creative_id": ["a", "b", "c", "d", "e", "f", "g", "solo"]})
    stats = _stats([
        (1, "young", "a", 900, 27), (1, "young", "b", 800, 30), (1, "young", "c", 300, 8),
        (1, "old", "a", 2000, 50), (1, "old", "b", 100, 2),
        (2, "young", "d", 400, 12), (2, "young", "e", 450, 10), (2, "old", "f", 500, 20), (2, "old", "g", 60, 1),
        (3, "young", "solo", 100, 3),
    ])
    return stats, catalog


def test_logged_probabilities_match_the_choices():
    stats, catalog = _two_ads()
    selector = ThompsonSelector(stats, catalog)
    pairs = [(1, "young"), (1, "old"), (2, "teen")]  # (2, "teen"): an unseen segment, ad-level evidence
    per_pair = 20_000
    ad_id = np.repeat([ad for ad, _ in pairs], per_pair)
    segment = np.repeat([segment for _, segment in pairs], per_pair)
    chosen = selector.choose(ad_id, segment, np.random.default_rng(3))
    expected = selector.selection_probabilities(ad_id, segment)

    assert list(chosen.columns) == ["ad_id", "segment", "creative_id", "probability"]
    assert len(chosen) == len(ad_id)
    np.testing.assert_allclose(expected.groupby(["ad_id", "segment"])["probability"].sum(), 1.0, atol=1e-12)
    logged = chosen.merge(expected, on=["ad_id", "segment", "creative_id"], suffixes=("", "_expected"))
    np.testing.assert_array_equal(logged["probability"], logged["probability_expected"])
    for ad, seg in pairs:
        rows = expected[(expected["ad_id"] == ad) & (expected["segment"] == seg)]
        picks = chosen[(chosen["ad_id"] == ad) & (chosen["segment"] == seg)]["creative_id"]
        frequency = picks.value_counts().reindex(rows["creative_id"], fill_value=0).to_numpy() / per_pair
        assert _within_binomial(frequency, rows["probability"].to_numpy(), per_pair), (ad, seg)
        assert rows["probability"].min() > 0.005  # every creative keeps being explored a little


def test_choices_are_reproducible_from_the_generator():
    stats, catalog = _two_ads()
    selector = ThompsonSelector(stats, catalog)
    ad_id, segment = np.array([1, 2, 1, 3] * 50), np.array(["young", "old", "x", "young"] * 50)
    first = selector.choose(ad_id, segment, np.random.default_rng(11))
    again = ThompsonSelector(stats, catalog).choose(ad_id, segment, np.random.default_rng(11))
    pd.testing.assert_frame_equal(first, again)


def test_a_creative_without_data_starts_at_its_ads_pooled_ctr():
    stats, catalog = _two_ads()
    catalog = pd.concat([catalog, pd.DataFrame({"ad_id": [1, 4, 4], "creative_id": ["new", "x", "y"]})])
    selector = ThompsonSelector(stats, catalog, prior_strength=20)
    ad_one = stats[stats["ad_id"] == 1]
    pooled = ad_one["clicks"].sum() / ad_one["impressions"].sum()
    global_ctr = stats["clicks"].sum() / stats["impressions"].sum()
    prior = (ad_one["clicks"].sum() + 20 * global_ctr) / (ad_one["impressions"].sum() + 20)
    means = selector.posterior_means().set_index(["ad_id", "segment", "creative_id"])

    for segment in (ALL_SEGMENTS, "young", "old"):
        new = means.loc[(1, segment, "new")]
        assert new["impressions"] == 0 and new["clicks"] == 0
        assert new["learned_ctr"] == pytest.approx(prior, rel=1e-12)
    assert prior == pytest.approx(pooled, rel=0.01)  # 4,100 impressions: the smoothing is negligible
    assert selector.ad_prior_ctr[1] == pytest.approx(prior, rel=1e-12)
    # An ad without any impression starts at the global CTR, and its creatives are tied.
    assert means.loc[(4, ALL_SEGMENTS, "x"), "learned_ctr"] == pytest.approx(global_ctr, rel=1e-12)
    tied = selector.selection_probabilities(np.array([4]), np.array(["young"]))
    np.testing.assert_allclose(tied["probability"], 0.5, atol=1e-12)
    # A creative with data in a segment: its own counts on top of its rate in the other segments
    # (900 impressions, 27 clicks of "a" elsewhere, smoothed toward the ad's), worth at most 200 impressions.
    seen = means.loc[(1, "old", "a")]
    elsewhere = (27 + 20 * prior) / (900 + 20)
    assert seen["learned_ctr"] == pytest.approx((200 * elsewhere + 50) / (200 + 2000), rel=1e-12)


def test_an_unseen_segment_uses_the_ads_counts_over_all_segments():
    stats, catalog = _two_ads()
    selector = ThompsonSelector(stats, catalog)
    unseen = selector.selection_probabilities(np.array([1, 1]), np.array(["teen", ALL_SEGMENTS]))
    by_segment = {segment: rows["probability"].to_numpy() for segment, rows in unseen.groupby("segment")}
    np.testing.assert_allclose(by_segment["teen"], by_segment[ALL_SEGMENTS], atol=1e-12)
    own = selector.selection_probabilities(np.array([1]), np.array(["old"]))["probability"].to_numpy()
    assert np.abs(own - by_segment["teen"]).max() > 0.05  # "old" has its own counts and its own ranking
    # ... and they are Thompson's probabilities under the posteriors of the ad-level counts.
    ad_level = selector.posterior_means().query("ad_id == 1 and segment == @ALL_SEGMENTS")
    assert ad_level["impressions"].tolist() == [2900, 900, 300] and ad_level["clicks"].tolist() == [77, 32, 8]
    prior = selector.ad_prior_ctr[1] * 20
    alpha = (prior + ad_level["clicks"]).to_numpy(float)[None]
    beta = (20 - prior + ad_level["impressions"] - ad_level["clicks"]).to_numpy(float)[None]
    np.testing.assert_allclose(by_segment["teen"], thompson_probabilities(alpha, beta)[0], atol=1e-12)
    with pytest.raises(ValueError, match="reserved"):
        ThompsonSelector(_stats([(1, ALL_SEGMENTS, "a", 10, 1)]), catalog)


def test_single_creative_and_ads_outside_the_catalog_are_certain():
    stats, catalog = _two_ads()
    selector = ThompsonSelector(stats, catalog)
    chosen = selector.choose(np.array([3, 99, 3, 99]), np.array(["young", "young", "new", None], dtype=object),
                             np.random.default_rng(0))
    assert chosen["creative_id"].tolist() == ["solo", None, "solo", None]
    assert chosen["probability"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert chosen["segment"].tolist() == ["young", "young", "new", ALL_SEGMENTS]
    listed = selector.selection_probabilities(np.array([99]), np.array(["young"]))
    assert len(listed) == 1 and listed["creative_id"].iloc[0] is None and listed["probability"].iloc[0] == 1.0
    empty = ThompsonSelector(stats.iloc[:0], catalog).choose(np.array([1, 1]), "young", np.random.default_rng(0))
    np.testing.assert_allclose(empty["probability"], 1 / 3, atol=1e-12)  # no data anywhere: all tied


def test_creative_stats_aggregates_an_impression_log():
    log = pd.DataFrame({"ad_id": [1, 1, 1, 2, 2], "segment": ["s", "s", "t", "s", "s"],
                        "creative_id": ["a", "a", "a", None, None], "clicked": [True, False, True, False, True]})
    stats = creative_stats(log)
    assert list(stats.columns) == CREATIVE_STATS_COLUMNS
    rows = {(r.ad_id, r.segment, r.creative_id if isinstance(r.creative_id, str) else None): (r.impressions, r.clicks)
            for r in stats.itertuples()}
    assert rows == {(1, "s", "a"): (2, 1), (1, "t", "a"): (1, 1), (2, "s", None): (2, 1)}
    assert creative_stats(log.iloc[:0]).empty


def test_choose_answers_every_slot_of_a_day_with_one_of_its_ads_creatives():
    """100k slots over 2,000 ads (its speed is in choose()'s docstring, not asserted here)."""
    rng = np.random.default_rng(5)
    ads, creatives, slots = 2_000, 3, 100_000
    catalog = pd.DataFrame({"ad_id": np.repeat(np.arange(ads), creatives), "creative_id": np.arange(ads * creatives)})
    stats = catalog.assign(segment="s", impressions=rng.integers(0, 3_000, len(catalog)))
    stats["clicks"] = rng.binomial(stats["impressions"], 0.03)
    selector = ThompsonSelector(stats[CREATIVE_STATS_COLUMNS], catalog)
    slot_ads = rng.integers(0, ads, slots)
    chosen = selector.choose(slot_ads, "s", rng)
    assert len(chosen) == slots and (chosen["ad_id"].to_numpy() == slot_ads).all()
    assert chosen["probability"].between(0, 1, inclusive="right").all()
    assert (chosen["creative_id"].to_numpy() // creatives == slot_ads).all()  # each ad's own creatives


# ---- bandit, report, plot ----------------------------------------------------------------------------

def test_regret_grows_sublinearly_on_a_synthetic_bandit():
    # 40 daily batches of 1,000. Over 60 seeds, the mean of 4 seeds stays far from every bound at its
    # 99.9% quantile: second/first half 0.25, regret(4T)/regret(T) 1.41, regret/uniform's 0.09.
    rounds, batch = 40, 1_000
    runs = [simulate_bandit(BANDIT_CTR, rounds=rounds, batch=batch, seed=seed) for seed in range(4)]
    regret = np.array([run["cumulative_regret"] for run in runs])
    total = rounds * batch
    first_half, second_half = regret[:, total // 2 - 1], regret[:, -1] - regret[:, total // 2 - 1]
    assert second_half.mean() < 0.5 * first_half.mean()
    assert regret[:, -1].mean() < 2.0 * regret[:, total // 4 - 1].mean()  # linear regret would be 4x
    uniform = (BANDIT_CTR.max() - BANDIT_CTR.mean()) * total  # showing every creative alike
    assert regret[:, -1].mean() < 0.2 * uniform
    for run in runs:
        assert run["chosen"].shape == run["probability"].shape == (total,)
        assert ((run["probability"] > 0) & (run["probability"] <= 1)).all()
        assert run["impressions"].sum() == total
        assert np.argmax(run["learned_ctr"]) == np.argmax(BANDIT_CTR)


def test_learned_ctr_tends_to_the_truth_and_the_report_is_plotted(tmp_path):
    rng = np.random.default_rng(2)
    truth = pd.DataFrame({"ad_id": [1, 1, 1, 2, 2], "creative_id": ["a", "b", "c", "d", "e"],
                          "true_ctr": [0.02, 0.05, 0.035, 0.01, 0.015]})
    errors = {}
    for impressions in (200, 200_000):
        stats = truth.assign(segment="s", impressions=impressions)
        stats["clicks"] = rng.binomial(impressions, stats["true_ctr"])
        report = creative_report(ThompsonSelector(stats[CREATIVE_STATS_COLUMNS], truth), truth)
        errors[impressions] = (report["learned_ctr"] - report["true_ctr"]).abs().max()
    standard_error = np.sqrt(truth["true_ctr"] * (1 - truth["true_ctr"]) / 200_000).max()
    assert errors[200_000] < 4 * standard_error
    assert errors[200_000] < errors[200]
    assert set(report["segment"]) == {ALL_SEGMENTS, "s"}  # truth without a segment holds in every one
    best = report[report["is_best"]].drop_duplicates("ad_id").set_index("ad_id")["creative_id"]
    assert best.to_dict() == {1: "b", 2: "e"}
    assert (report["is_best"] == report["is_learned_best"]).all()

    run = simulate_bandit(BANDIT_CTR, rounds=10, batch=200, seed=1)
    regret = regret_curve(BANDIT_CTR[run["chosen"]], BANDIT_CTR.max())
    np.testing.assert_allclose(regret["cumulative_regret"], run["cumulative_regret"])
    assert regret["regret_per_impression"].iloc[-1] == pytest.approx(regret["cumulative_regret"].iloc[-1] / 2000)
    path = plot_creative_report(report, regret, tmp_path / "plots" / "creatives.png")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_regret_curve_rejects_a_chosen_creative_above_the_best():
    with pytest.raises(ValueError, match="above the best"):
        regret_curve(np.array([0.02, 0.07]), np.array([0.06, 0.06]))


# --- the selector in the product: schedule rows, replay on a log, off-policy CTR ---------------------

def _catalog() -> pd.DataFrame:
    return pd.DataFrame({"creative_id": [700, 701, 702], "ad_id": [10, 10, 11],
                         "title": ["ten | shop now", "ten | save today", "eleven | new look"]})


def test_assign_creatives_draws_one_of_the_ads_creatives_with_its_probability():
    from ml.creatives.assign import CreativeInputs, assign_creatives

    catalog = _catalog()
    stats = pd.DataFrame({"ad_id": [10, 10], "segment": ["25-34", "25-34"], "creative_id": [700, 701],
                          "impressions": [400, 400], "clicks": [40, 4]})
    rows = pd.DataFrame({"user_key": ["a", "b", "a", "c"], "ad_id": [10, 10, 12, 11]})
    segments = pd.DataFrame({"user_key": ["a", "b"], "segment": ["25-34", "55+"]})
    creatives = CreativeInputs(stats, catalog, segments)

    out = assign_creatives(rows, creatives, np.random.default_rng(1))

    assert out.loc[0, "creative_id"] == 700  # 10% vs 1% CTR on 400 impressions each: certain in 25-34
    assert out.loc[0, "creative_title"] == "ten | shop now"
    assert out.loc[0, "creative_probability"] == pytest.approx(1.0, abs=1e-6)
    assert out.loc[1, "creative_id"] in (700, 701)  # segment 55+ has no data: the ad-level posterior
    assert pd.isna(out.loc[2, "creative_id"]) and pd.isna(out.loc[2, "creative_title"])  # ad 12 has none
    assert np.isnan(out.loc[2, "creative_probability"])
    assert out.loc[3, "creative_id"] == 702 and out.loc[3, "creative_probability"] == 1.0  # user c: 'unknown'
    again = assign_creatives(rows, creatives, np.random.default_rng(1))
    pd.testing.assert_frame_equal(out, again)


def _uniform_log(days: int, per_day: int, true_ctr: dict[int, float], seed: int) -> pd.DataFrame:
    """A log of ad 10 whose creative was drawn uniformly (propensity 1/2), clicks from `true_ctr`."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    creative = rng.choice(list(true_ctr), size=n)
    clicked = rng.random(n) < np.vectorize(true_ctr.get)(creative)
    day = np.repeat(pd.date_range("2026-11-01", periods=days).to_numpy(), per_day)
    ts = day + pd.to_timedelta(np.tile(np.arange(per_day), days) * 10, unit="s").to_numpy()
    return pd.DataFrame({
        "impression_id": np.arange(n), "impression_ts": ts, "impression_date": day, "ad_id": 10,
        "creative_id": pd.array(creative, dtype="Int64"), "creative_propensity": 0.5, "clicked": clicked,
        "click_ts": pd.Series(ts + np.timedelta64(5, "s")).where(clicked).to_numpy(), "click_label_final": True,
        "segment": "25-34"})


def test_replayed_selector_learns_the_better_creative_and_ips_sees_its_lift():
    from ml.creatives.evaluation import replay_selector, selector_ctr_off_policy

    log = _uniform_log(days=6, per_day=3000, true_ctr={700: 0.08, 701: 0.02}, seed=3)
    replay = replay_selector(log, _catalog())

    assert replay["day"].nunique() == 5  # the first day has nothing before it
    assert np.allclose(replay.groupby("impression_id")["probability"].sum(), 1.0)
    last_day = replay[replay["day"] == replay["day"].max()]
    assert last_day.loc[last_day["creative_id"] == 700, "probability"].min() > 0.99
    estimate = selector_ctr_off_policy(log, replay)
    # Uniform logging shows ~5% CTR; the selector shows 700 (8%) almost always.
    assert estimate.logged_ctr == pytest.approx(0.05, abs=0.005)
    assert estimate.interval[0] < estimate.selector_ctr < estimate.interval[1]
    assert 0.07 < estimate.selector_ctr < 0.09 and estimate.lift_interval[0] > 0


def test_off_policy_ctr_is_none_without_logged_creative_propensities():
    from ml.creatives.evaluation import replay_selector, selector_ctr_off_policy

    log = _uniform_log(days=2, per_day=50, true_ctr={700: 0.5, 701: 0.5}, seed=4).assign(creative_propensity=np.nan)
    assert selector_ctr_off_policy(log, replay_selector(log, _catalog())) is None


def test_a_segment_with_little_data_borrows_the_creatives_rates_elsewhere():
    stats = pd.DataFrame({"ad_id": 1, "segment": ["young", "young", "old", "old"], "creative_id": ["a", "b", "a", "b"],
                          "impressions": [5000, 5000, 5, 5], "clicks": [500, 50, 0, 1]})
    catalog = pd.DataFrame({"ad_id": [1, 1], "creative_id": ["a", "b"]})
    borrowing = ThompsonSelector(stats, catalog).selection_probabilities(np.array([1]), np.array(["old"]))
    # a: 10% CTR elsewhere against b's 1%; five impressions of "old" do not overturn that ...
    assert borrowing.set_index("creative_id").loc["a", "probability"] > 0.95
    # ... and the less the rates elsewhere are worth, the less sure the segment is.
    weak = ThompsonSelector(stats, catalog, segment_prior_strength=20.0).selection_probabilities(
        np.array([1]), np.array(["old"]))
    assert 0.5 < weak.set_index("creative_id").loc["a", "probability"] < borrowing.set_index(
        "creative_id").loc["a", "probability"]
    own_only = stats[stats["segment"] == "old"]
    alone = ThompsonSelector(own_only, catalog).selection_probabilities(np.array([1]), np.array(["old"]))
    assert alone.set_index("creative_id").loc["a", "probability"] < 0.5  # b's one click wins without the others


def test_assigned_creatives_do_not_depend_on_the_rows_physical_order():
    from ml.creatives.assign import CreativeInputs, assign_creatives

    catalog = _catalog()
    rows = pd.DataFrame({"user_key": [f"u{i % 37}" for i in range(200)], "ad_id": 10, "hour": np.arange(200) % 24,
                         "slot": np.arange(200) % 4 + 1})
    segments = pd.DataFrame({"user_key": [f"u{i}" for i in range(37)], "segment": "25-34"})
    creatives = CreativeInputs(pd.DataFrame(columns=CREATIVE_STATS_COLUMNS), catalog, segments)
    first = assign_creatives(rows, creatives, np.random.default_rng(5))
    shuffled = rows.sample(frac=1.0, random_state=3)
    second = assign_creatives(shuffled, creatives, np.random.default_rng(5)).loc[rows.index]
    pd.testing.assert_frame_equal(first, second)
    assert first["creative_id"].nunique() == 2  # tied creatives: both drawn
