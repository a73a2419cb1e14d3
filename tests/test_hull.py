import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scale_transfer.hull import hull_points, mark_hull, upper_hull

# Accuracies: free floats, or a coarse grid that makes ties and duplicates common.
acc = st.one_of(
    st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False),
    st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]),
)
points = st.lists(st.tuples(acc, acc), min_size=1, max_size=60)
FAST = settings(max_examples=150, deadline=None)


def _xy(pts):
    a = np.array(pts, dtype=float)
    return a[:, 0], a[:, 1]


def _frontier(hx, hy, x):
    """The piecewise-linear hull, flat at its last value to the right of it."""
    return np.where(x > hx[-1], hy[-1], np.interp(x, hx, hy))


@FAST
@given(points)
def test_points_lie_on_or_under_the_hull(pts):
    x, y = _xy(pts)
    h = upper_hull(x, y)
    assert np.all(y <= _frontier(x[h], y[h], x) + 1e-12)


@FAST
@given(points)
def test_hull_is_a_strictly_increasing_concave_subset(pts):
    x, y = _xy(pts)
    h = upper_hull(x, y)
    assert h.dtype.kind == "i"
    assert len(np.unique(h)) == len(h) >= 1
    assert h.min() >= 0 and h.max() < len(x)
    hx, hy = x[h], y[h]
    assert np.all(np.diff(hx) > 0)
    assert np.all(np.diff(hy) > 0)
    slopes = np.diff(hy) / np.diff(hx)
    assert np.all(np.diff(slopes) <= 1e-9 * (1 + np.abs(slopes[1:])))


@FAST
@given(points)
def test_hull_ends_at_the_leftmost_and_the_best_point(pts):
    x, y = _xy(pts)
    h = upper_hull(x, y)
    assert x[h[0]] == x.min()
    assert y[h[0]] == y[x == x.min()].max()
    assert y[h[-1]] == y.max()
    assert x[h[-1]] == x[y == y.max()].min()


@FAST
@given(points, st.randoms(use_true_random=False))
def test_hull_does_not_depend_on_row_order(pts, random):
    x, y = _xy(pts)
    perm = np.array(random.sample(range(len(x)), len(x)))
    h1 = upper_hull(x, y)
    h2 = upper_hull(x[perm], y[perm])
    np.testing.assert_array_equal(
        np.column_stack([x[h1], y[h1]]), np.column_stack([x, y])[perm][h2]
    )


def test_example_and_edge_cases():
    np.testing.assert_array_equal(
        upper_hull([0.1, 0.2, 0.3, 0.4, 0.5], [0.2, 0.5, 0.55, 0.9, 0.6]), [0, 1, 3]
    )
    assert upper_hull([], []).size == 0
    # collinear middle point is not a vertex; duplicates give the first in input order
    np.testing.assert_array_equal(upper_hull([0.0, 0.5, 1.0], [0.0, 0.5, 1.0]), [0, 2])
    np.testing.assert_array_equal(upper_hull([0.3, 0.3, 0.1], [0.9, 0.9, 0.2]), [2, 0])
    # a flat top ends at its leftmost point
    np.testing.assert_array_equal(upper_hull([0.1, 0.2, 0.4], [0.5, 0.8, 0.8]), [0, 1])
    with pytest.raises(ValueError, match="finite"):
        upper_hull([0.1, np.nan], [0.2, 0.3])
    with pytest.raises(ValueError, match="length"):
        upper_hull([0.1, 0.2], [0.2])


@pytest.fixture
def frame():
    rng = np.random.default_rng(3)
    n = 40
    return pd.DataFrame(
        {
            "model": [f"m{i}" for i in range(n)] * 3,
            "task": ["a"] * n + ["b"] * n + ["a"] * n,
            "setting": ["s1"] * (2 * n) + ["s2"] * n,
            "us_acc": rng.uniform(0, 0.6, 3 * n),
            "ds_acc": rng.uniform(0, 1, 3 * n),
            "family": "ViT",
        },
        index=np.arange(3 * n) + 100,
    )


def test_mark_hull_and_hull_points_agree_per_group(frame):
    marked = mark_hull(frame)
    assert list(marked.columns) == [*frame.columns, "on_hull"]
    assert "on_hull" not in frame.columns
    pts = hull_points(frame)
    assert list(pts.columns) == list(frame.columns)
    assert set(pts.index) == set(marked.index[marked.on_hull])
    for (setting, task), g in frame.groupby(["setting", "task"]):
        h = g.iloc[upper_hull(g.us_acc, g.ds_acc)]
        got = pts[(pts.setting == setting) & (pts.task == task)]
        pd.testing.assert_frame_equal(got, h)


def test_groups_come_from_upstream_and_shots_without_setting(frame):
    df = frame.drop(columns="setting").assign(upstream="jft", shots=25)
    # without a setting column the two "a" blocks form one group
    pts = hull_points(df)
    a = df[df.task == "a"]
    np.testing.assert_array_equal(
        pts[pts.task == "a"].index, a.index[upper_hull(a.us_acc, a.ds_acc)]
    )
