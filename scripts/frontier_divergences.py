"""Where a frontier fit's divergent transitions sit, in posterior standard deviations.

Refits ``simulate("jft-25shot", N_MODELS, SEED)`` with the frontier likelihood at the
package's defaults and prints, for each divergent draw, how far each per-task parameter is
from its posterior mean (in posterior sds), so that a tail shared by the divergent draws
stands out.

Usage: .venv/bin/python scripts/frontier_divergences.py [SEED] [N_MODELS]
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

import scale_transfer as st
from scale_transfer.simulate import simulate

PER_GROUP = ("sigma", "gap", "gap_shape", "gap_power", "log_level_group", "alpha", "e_ir")
SHARED = ("bad_share", "bad_gap")


def main() -> None:
    """Fit and print the divergent draws' positions."""
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    n_models = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    sim = simulate("jft-25shot", n_models, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = st.fit(sim.data, target="all", likelihood="frontier", seed=seed, progress=False)
    div = post.dt["sample_stats"]["diverging"].values.astype(bool)  # (chain, draw)
    print(post.diagnostics.verdict())
    p = post.dt["posterior"]
    print("groups:", list(p["sigma"].coords["group"].values))
    if not div.any():
        return
    for name in PER_GROUP + SHARED:
        v = p[name].values
        flat = v.reshape(-1, *v.shape[2:])
        z = (v[div] - flat.mean(0)) / flat.std(0)
        print(f"{name}: {np.round(z, 1).tolist()}")


if __name__ == "__main__":
    main()
