"""The near-repeat component: offspring keep the type posterior exact, dirt rows trigger nothing,
and the rows asked for are the rows written."""

import numpy as np
import pandas as pd
import pytest

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.synthetic.dirt import DIRT_RATES
from crime_pipeline.lib.synthetic.spec import NEAR_REPEAT, spec, spec_for_version

ROWS = 30_000


@pytest.fixture(scope="module")
def generated():
    return synthetic.generate_incidents(ROWS, seed=21)


def reached(data) -> pd.DataFrame:
    """The rows that reach `incidents` (one per case), as validation reads them, with their generation."""
    keep = np.isin(data.dirt, ["clean", "reissued_newer"])
    f = data.frame[keep]
    return pd.DataFrame(
        {
            "lat": f["Latitude"].astype(float).to_numpy(),
            "lon": f["Longitude"].astype(float).to_numpy(),
            "time": pd.to_datetime(f["Incident Datetime"], format="%m/%d/%Y %I:%M:%S %p").to_numpy(),
            "label": np.asarray(data.true_label)[keep],
            "generation": data.generation[keep],
        }
    )


def calibration_z(post: np.ndarray, truth: np.ndarray, bins: int = 4) -> np.ndarray:
    """Per class and per quantile bin of its posterior: (count - sum p) / sqrt(sum p (1 - p))."""
    z = []
    for k in range(post.shape[1]):
        p = post[:, k]
        if p.sum() < 50:
            continue
        edges = np.quantile(p, np.linspace(0, 1, bins + 1))
        which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
        for b in range(bins):
            sel = which == b
            z.append(((truth[sel] == k).sum() - p[sel].sum()) / np.sqrt((p[sel] * (1 - p[sel])).sum()))
    return np.array(z)


def test_offspring_types_follow_the_exact_posterior_the_bayes_limit_uses(generated):
    """The Bayes evaluation's `posterior`, on the offspring rows as validation reads them, is the
    distribution their types were drawn from: calibrated per class and per posterior bin. The same
    check on labels shuffled among those rows fails, so it has the power to see a wrong draw."""
    rows = reached(generated)
    off = rows[rows["generation"] > 0]
    assert len(off) > 0.2 * len(rows)
    post = synthetic.posterior(off["lat"], off["lon"], off["time"])
    truth = pd.Categorical(off["label"], categories=synthetic.CLASSES).codes
    assert np.abs(calibration_z(post, truth)).max() < 4.5
    shuffled = np.random.default_rng(0).permutation(truth)
    assert np.abs(calibration_z(post, shuffled)).max() > 6


def test_offspring_share_is_the_branching_ratio_and_dirt_rows_trigger_nothing(generated):
    rows = reached(generated)
    share = (rows["generation"] > 0).mean()
    assert abs(share - NEAR_REPEAT.branching) < 0.02, (
        share
    )  # offspring / all = branching in a stationary cluster process
    quarantined = np.isin(generated.dirt, list(DIRT_RATES))
    assert (generated.generation[quarantined] == -1).all() and (generated.generation[~quarantined] >= 0).all()
    assert len(generated.frame) == ROWS


def test_near_repeats_are_near_and_soon():
    """Offspring sit a Gaussian step (or nothing) from a parent and a whole number of days after it:
    pairs of incidents within 150 m and a week are far more common than without near repeats."""

    def close_pairs(near_repeat: bool) -> int:
        rows = reached(synthetic.generate_incidents(8_000, seed=3, near_repeat=near_repeat))
        rows = rows[rows["time"] >= pd.Timestamp("2023-01-01")].sort_values("time")
        t = rows["time"].to_numpy().astype("datetime64[s]").astype(np.int64)
        y, x = rows["lat"].to_numpy() * 111_195, rows["lon"].to_numpy() * 111_195 * np.cos(np.radians(42.9))
        pairs = 0
        for i in range(len(t)):
            j = slice(i + 1, np.searchsorted(t, t[i] + 7 * 86_400, side="right"))
            pairs += int((np.hypot(y[j] - y[i], x[j] - x[i]) < 150).sum())
        return pairs

    assert close_pairs(True) > 3 * close_pairs(False)


def test_near_repeats_are_a_version_of_their_own_and_can_be_turned_off():
    """Files are recorded with the generator version: with and without near repeats differ, and
    `spec_for_version` finds either (the Bayes limit and the oracle need the model a file came from)."""
    on, off = spec(), spec(near_repeat=False)
    assert synthetic.GENERATOR_VERSION == on.version != off.version
    assert on.near_repeat == NEAR_REPEAT and off.near_repeat is None
    assert spec_for_version(off.version) is off and spec_for_version(on.version) is on
    assert spec_for_version("0123456789abcdef") is None
    plain = synthetic.generate_incidents(500, seed=3, near_repeat=False)
    assert (plain.generation == 0).all() and len(plain.frame) == 500
