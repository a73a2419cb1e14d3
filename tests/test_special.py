"""The inlined ``erfcx`` op: SciPy's values on every branch, PyTensor's gradient."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special as sp

from scale_transfer.special import InlinedErfcx, erfcx, erfcx_scalar


def _points() -> np.ndarray:
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, 1e-300, -1e-300, 50.0, 50.0001, 5e7, 5.0001e7, -6.1, -6.1001, -26.7]
    edges += [-26.7001, 1e300, np.inf, -np.inf, np.nan]
    return np.concatenate([rng.uniform(-27.0, 60.0, 20_000), rng.uniform(-1, 1, 2_000), edges])


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_RUN"])
def test_erfcx_gives_scipys_values_on_every_branch(mode: str) -> None:
    x = pt.dvector("x")
    v = _points()
    got = pytensor.function([x], erfcx(x), mode=mode)(v)
    ref = sp.erfcx(v)
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-15, atol=0)
    np.testing.assert_array_equal(got[~finite], ref[~finite])  # inf and nan where SciPy's are


def test_erfcx_scalar_is_scipys_algorithm() -> None:
    v = _points()[:3000]
    got = np.array([erfcx_scalar(x) for x in v])
    np.testing.assert_array_equal(got, sp.erfcx(v))  # bit for bit without fast-math


def test_erfcx_gradient_is_pytensors_and_the_numba_graph_uses_the_inlined_op() -> None:
    x = pt.dvector("x")
    v = _points()
    v = v[np.isfinite(v) & (v > -26.0) & (v < 1e6)]
    ours = pytensor.function([x], pytensor.grad(erfcx(x).sum(), x), mode="NUMBA")
    theirs = pytensor.function([x], pytensor.grad(pt.erfcx(x).sum(), x), mode="NUMBA")
    np.testing.assert_allclose(ours(v), theirs(v), rtol=1e-12, atol=1e-14)
    ops = [
        node.op.scalar_op for node in ours.maker.fgraph.apply_nodes if hasattr(node.op, "scalar_op")
    ]
    inner = []
    for op in ops:
        fgraph = getattr(op, "fgraph", None)
        inner += [n.op for n in fgraph.apply_nodes] if fgraph is not None else [op]
    assert any(isinstance(op, InlinedErfcx) for op in inner)


def test_a_new_lowering_gets_a_new_key_in_the_compiled_model_cache(monkeypatch) -> None:
    """The cache keys on the graph; the lowering's version is in the op's description."""
    from scale_transfer import special
    from scale_transfer.compile_cache import _graph_token

    x = pt.dvector("x")
    y = erfcx(x)
    before = _graph_token([x], [y])
    assert _graph_token([x], [y]) == before
    monkeypatch.setattr(special, "LOWERING_VERSION", special.LOWERING_VERSION + 1)
    assert _graph_token([x], [y]) != before
