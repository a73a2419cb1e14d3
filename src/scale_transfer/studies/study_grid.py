"""The sample-size study's grid: its data, the held-out split, and one job per fit.

Each setting's models of highest mean US accuracy are held out; a fit's subsample is drawn
from the rest (the *pool*) with a seed made from the study's seed and the fit's key, so a
rerun draws the same subsamples.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scale_transfer.config import SamplerConfig
from scale_transfer.studies.study_fits import Job

__all__ = ["Grid", "fit_keys", "fit_seed", "load_data", "size_label", "split_pool", "subsample"]

#: Per setting: the pool, the held-out models' rows, and the pool's models.
Split = tuple[pd.DataFrame, pd.DataFrame, list[str]]


def _stable_hash(s: str) -> int:
    return zlib.crc32(s.encode())


def size_label(size: int | str) -> str:
    """Return the label of a sample size (``"all"`` or a positive integer); refuse others."""
    if str(size) == "all":
        return "all"
    n = int(size)
    if n < 1:
        raise ValueError(f"sample sizes must be positive integers or 'all'; got {size}")
    return str(n)


def split_pool(df: pd.DataFrame, holdout_top: float) -> Split:
    """Hold out the models of highest mean US accuracy; return pool, holdout, pool models."""
    us = df.groupby("model", sort=False)["us_acc"].mean().sort_values(kind="stable")
    n_hold = math.ceil(holdout_top * len(us))
    if not 0 < n_hold < len(us):
        raise ValueError(
            f"holdout_top={holdout_top} holds out {n_hold} of {len(us)} models; "
            "it must leave at least one model on each side"
        )
    held = set(us.index[len(us) - n_hold :])
    is_held = df["model"].isin(held)
    pool_models = [m for m in us.index if m not in held]
    return df[~is_held], df[is_held], pool_models


def subsample(
    pool: pd.DataFrame, pool_models: list[str], size: str, seed: int, setting: str, repeat: int
) -> pd.DataFrame:
    """Return the pool's rows of ``size`` models drawn for one (setting, repeat); all for "all"."""
    if size == "all":
        return pool
    rng = np.random.default_rng([seed, _stable_hash(setting), int(size), repeat])
    pick = set(rng.choice(np.array(pool_models, dtype=object), int(size), replace=False))
    return pool[pool["model"].isin(pick)]


def fit_seed(seed: int, key: tuple) -> int:
    """Return the MCMC seed of one fit, from the study's seed and the fit's key."""
    words = [seed, *(_stable_hash(str(v)) for v in key)]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def load_data(
    settings: Sequence[str] | None,
    data: str | os.PathLike | pd.DataFrame | None,
    n_models: int,
    sim_seed: int,
    percent: bool,
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, float]], dict[str, Any]]:
    """Per setting: the tidy frame and the true asymptotes; plus what identifies the data."""
    cols = ["model", "task", "us_acc", "ds_acc"]
    frames, truths = {}, {}
    if data is None:
        from scale_transfer.simulate import SETTINGS, simulate

        for s in settings or SETTINGS:
            sim = simulate(s, n_models=n_models, seed=sim_seed)
            frames[s] = sim.data[cols].reset_index(drop=True)
            truths[s] = dict(zip(sim.truth["task"], sim.truth["asymptote"], strict=True))
        ident = {"data": "simulate", "n_models": n_models, "sim_seed": sim_seed}
        return frames, truths, ident
    from scale_transfer.data import read_tidy

    df = read_tidy(data, percent=percent)
    have = list(pd.unique(df["setting"]))
    wanted = list(settings) if settings else have
    missing = [s for s in wanted if s not in have]
    if missing:
        raise ValueError(
            f"setting(s) {', '.join(missing)} not in the data; it has {', '.join(have)}"
        )
    for s in wanted:
        frames[s] = df.loc[df["setting"] == s, cols].reset_index(drop=True)
        truths[s] = {}
    h = pd.util.hash_pandas_object(df[[*cols, "setting"]], index=False).to_numpy()
    ident = {"data": hashlib.sha256(h.tobytes()).hexdigest()[:16]}
    return frames, truths, ident


def fit_keys(
    splits: dict[str, Split],
    size_labels: list[str],
    methods: Sequence[str],
    targets: Sequence[str],
    repeats: int,
    say: Callable[[str], None],
) -> list[tuple]:
    """Every fit's key in run order; sizes not below a setting's pool are skipped."""
    for s, (_, _, pool_models) in splits.items():
        too_big = [z for z in size_labels if z != "all" and int(z) >= len(pool_models)]
        if too_big:
            covered = "('all' covers them)" if "all" in size_labels else "(add the size 'all')"
            say(
                f"{s}: the pool holds {len(pool_models)} models; skipping size(s) "
                f"{', '.join(too_big)} {covered}"
            )
    # cheap least-squares fits first, then repeat-major: a run cut short (time limit,
    # interruption) leaves whole repeats finished
    keys = [
        (s, z, r, t, m)
        for m in sorted(methods, key=lambda m: m != "lsq")
        for r in range(repeats)
        for s, (_, _, pool_models) in splits.items()
        for z in size_labels
        if z == "all" or int(z) < len(pool_models)
        for t in targets
    ]
    if not keys:
        raise ValueError(
            "nothing to fit: every size is at least the pool's number of models "
            f"({', '.join(f'{s}: {len(p[2])}' for s, p in splits.items())}); choose smaller "
            "sizes or add the size 'all'"
        )
    return keys


@dataclass
class Grid:
    """The study's fits: one key per (setting, size, repeat, target, method), and their jobs."""

    splits: dict[str, Split]
    truths: dict[str, dict[str, float]]
    sampler: SamplerConfig  # its seed seeds the subsamples and, per fit, the MCMC
    centered: bool | str

    def job(self, key: tuple) -> Job:
        """Return the job of one fit: its subsample, the held-out models, a seed of its own."""
        s, z, r, t, m = key
        pool, holdout, pool_models = self.splits[s]
        sample = subsample(pool, pool_models, z, self.sampler.seed, s, r)
        return Job(
            setting=s,
            size=z,
            repeat=r,
            target=t,
            method=m,
            sample=sample.reset_index(drop=True),
            holdout=holdout.reset_index(drop=True),
            truth=self.truths[s],
            n_pool=len(pool_models),
            sampler=dataclasses.replace(self.sampler, seed=fit_seed(self.sampler.seed, key)),
            centered=self.centered,
        )
