"""The convergence verdict: R-hat, bulk and tail ESS, divergences, draws against those asked."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from scale_transfer.config import PACKAGE_DIR, TARGET_ACCEPT_HIGH

__all__ = [
    "CHECK_VARS",
    "ConvergenceError",
    "ConvergenceWarning",
    "Diagnostics",
    "check_convergence",
]

#: Variables whose convergence is checked and reported.
CHECK_VARS = ("k", "alpha", "e_ir", "sigma")


class ConvergenceWarning(UserWarning):
    """The sampler did not converge: R-hat, ESS or divergences failed their thresholds."""


class ConvergenceError(RuntimeError):
    """Raised instead of :class:`ConvergenceWarning` in strict mode."""


@dataclass
class Diagnostics:
    """Convergence summary of one fit."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    max_depth_hits: int
    draws: int
    chains: int
    failed: list[str] = field(default_factory=list)
    compile_seconds: float = float("nan")
    sample_seconds: float = float("nan")
    compile_cached: bool = False
    #: the Gaussian likelihood came from sufficient statistics (:mod:`scale_transfer.suffstats`)
    summary_stats: bool = False

    @property
    def ok(self) -> bool:
        """Return True when every check passed."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """Return the fields (and ``ok``) as a dict."""
        d = dict(self.__dict__)
        d["ok"] = self.ok
        return d

    def verdict(self) -> str:
        """Return a one-paragraph verdict."""
        head = "converged" if self.ok else "NOT CONVERGED"
        text = (
            f"{head}: max R-hat {self.max_rhat:.3f}, min bulk ESS {self.min_ess_bulk:.0f}, "
            f"min tail ESS {self.min_ess_tail:.0f}, {self.divergences} divergences, "
            f"{self.max_depth_hits} max-tree-depth hits ({self.chains} chains x {self.draws} draws)"
        )
        if self.failed:
            text += ". " + " ".join(self.failed)
        return text


def _stat(dt: xr.DataTree, *names: str) -> xr.DataArray | None:
    ss = dt["sample_stats"]
    for n in names:
        if n in ss.data_vars:
            return ss[n]
    return None


def _worst(ds: xr.Dataset, fn: str) -> tuple[float, str]:
    """Return the largest (``fn="max"``) or smallest value over every variable, and where."""
    vals = {}
    for v in ds.data_vars:
        arr = ds[v]
        if arr.size == 0:
            continue
        s = arr.to_series() if arr.ndim else pd.Series([float(arr)], index=[v])
        s = s.dropna()
        if s.empty:
            continue
        idx = s.idxmax() if fn == "max" else s.idxmin()
        label = v if arr.ndim == 0 else f"{v}[{idx}]"
        vals[label] = float(s.max() if fn == "max" else s.min())
    if not vals:
        return float("nan"), ""
    pick = max(vals, key=vals.get) if fn == "max" else min(vals, key=vals.get)
    return vals[pick], pick


def _divergence_advice(ndiv: int, target_accept: float | str | None) -> str:
    """Say what to try against divergent transitions, given the target they came at."""
    centring = (
        "switch centring (centered=True for data-rich tasks, False for few points; "
        "--centered yes/no on the command line)"
    )
    known = isinstance(target_accept, int | float)
    if known and target_accept >= TARGET_ACCEPT_HIGH:
        # a still smaller step rarely removes the last few; say so
        advice = (
            f"target_accept is already {target_accept:g}; {centring}, or look at where "
            "the divergent draws sit (post.dt.sample_stats.diverging): they mark a "
            "region the sampler could not follow; check whether what you report "
            "depends on it"
        )
    else:
        now = f" (now {target_accept:g})" if known else ""
        advice = (
            f"raise target_accept{now} to {TARGET_ACCEPT_HIGH:g} (--target-accept), or {centring}"
        )
    return f"{ndiv} divergent transitions: {advice}."


def _incomplete(
    post: xr.Dataset, nchain: int, ndraw: int, expected: tuple[int, int] | None
) -> list[str]:
    """Name what makes these draws unfit to check: too few, or not finite."""
    failed = []
    if expected is not None and (nchain, ndraw) != tuple(expected):
        failed.append(
            f"{nchain} chains x {ndraw} draws, but {expected[0]} x {expected[1]} were asked: "
            "the run was cut short."
        )
    bad = [v for v in post.data_vars if not np.isfinite(post[v].values).all()]
    if bad or ndraw == 0:
        failed.append(f"draws missing or not finite in {', '.join(bad) or 'every variable'}.")
    return failed


def check_convergence(
    dt: xr.DataTree,
    *,
    rhat_max: float = 1.01,
    ess_min: float = 400.0,
    strict: bool = False,
    var_names: tuple[str, ...] = CHECK_VARS,
    target_accept: float | str | None = None,
    expected: tuple[int, int] | None = None,
) -> Diagnostics:
    """Check R-hat, bulk and tail ESS and divergences; warn (or raise) on failure.

    Parameters
    ----------
    dt : xarray.DataTree
        With ``posterior`` and ``sample_stats``.
    rhat_max : float
        Largest acceptable rank-normalized split R-hat.
    ess_min : float
        Smallest acceptable bulk and tail ESS (over all chains; scaled down for short runs
        to 100 per chain).
    strict : bool
        Raise :class:`ConvergenceError` instead of warning.
    var_names : tuple of str
        Variables checked.
    target_accept : float, optional
        The target the fit was sampled at; the advice on divergences depends on it
        (``None`` or an unresolved ``"auto"``: not known).
    expected : (chains, draws), optional
        What was asked of the sampler: fewer chains or draws than that (a run cut short),
        or draws that are not finite, fail the check. A diagnostic that cannot be
        computed (NaN) fails it too.

    Returns
    -------
    Diagnostics
    """
    post = dt["posterior"].to_dataset()
    names = [v for v in var_names if v in post.data_vars]
    sub = post[names]
    nchain, ndraw = post.sizes["chain"], post.sizes["draw"]
    rhat = az.rhat(sub)
    ess_b = az.ess(sub, method="bulk")
    ess_t = az.ess(sub, method="tail")
    div = _stat(dt, "diverging")
    ndiv = int(div.sum()) if div is not None else 0
    depth = _stat(dt, "maxdepth_reached", "reached_max_treedepth")
    ndepth = int(depth.sum()) if depth is not None else 0

    max_rhat, rhat_at = _worst(rhat, "max")
    min_bulk, bulk_at = _worst(ess_b, "min")
    min_tail, tail_at = _worst(ess_t, "min")
    need = min(ess_min, 100.0 * nchain)
    failed = _incomplete(sub, nchain, ndraw, expected)
    if nchain > 1 and not max_rhat <= rhat_max:  # NaN fails
        failed.append(
            f"R-hat {max_rhat:.3f} > {rhat_max} at {rhat_at}: run longer (more tune/draws) "
            "or switch centring (centered=True/False; --centered yes/no on the command line)."
        )
    if not min_bulk >= need:
        failed.append(f"bulk ESS {min_bulk:.0f} < {need:.0f} at {bulk_at}: draw more.")
    if not min_tail >= need:
        failed.append(f"tail ESS {min_tail:.0f} < {need:.0f} at {tail_at}: draw more.")
    if ndiv:
        failed.append(_divergence_advice(ndiv, target_accept))
    diag = Diagnostics(
        max_rhat=max_rhat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        divergences=ndiv,
        max_depth_hits=ndepth,
        draws=ndraw,
        chains=nchain,
        failed=failed,
    )
    if failed:
        msg = "scale-transfer: the sampler did not converge. " + " ".join(failed)
        if strict:
            raise ConvergenceError(msg)
        # point at the user's line (their fit(...)), not at a line of this package
        warnings.warn(msg, ConvergenceWarning, skip_file_prefixes=(PACKAGE_DIR,))
    return diag
