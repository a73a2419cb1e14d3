"""A simulator of the paper's experiments, with known true parameters.

Each simulated pre-trained model has a family (ViT, MLP-Mixer, a few ResNets), a parameter
count and an upstream (US) accuracy that grows with its size, spread by hyper-parameters.
Its downstream (DS) accuracy on each task is the *frontier* (the law
``e_ds = k * e_us**alpha + e_ir`` with the true parameters of the setting and task) minus a
non-negative gap, plus a little noise:

- most models fall a little under the frontier: the gap is a sum of a per-model part
  (hyper-parameter quality, shared by the tasks, weight 0.4) and a per-task part (weight
  0.6), both exponential, with mean ``(0.02 + 0.04 * min(k, 1)) * (0.5 + 1.5 * e_front)``
  where ``e_front`` is the frontier's DS error: about 0.01-0.05 in accuracy where most models
  are, more at low US accuracy;
- about 4% of the models have bad hyper-parameters and fall far under it (0.05-0.45);
- the noise is Gaussian with sd 0.003, so a few points sit slightly above the frontier;
- DS accuracies are clipped to [0, 1].

Because every gap is non-negative and the noise small, the upper hull of the points
(:mod:`scale_transfer.hull`) follows the frontier, and a fit to it recovers the true
parameters where the data pin them down.

True parameters. For ``jft-25shot`` they are the *hull* columns of the table in the paper
notes (read off Figure A). The other settings are plausible shifts of them:

- 1-shot: the asymptote ``1 - e_ir`` is 0.8 times the 25-shot one, ``k`` grows by 15%, and
  ``alpha`` is 0.85 times the 25-shot one (slower saturation);
- ImageNet-21k: US accuracies reach about 0.89 (JFT: about 0.6), so the same DS accuracy
  comes at a lower US error: ``alpha`` is halved; the asymptote is 0.97 times the JFT one;
- in every setting ``k`` is then capped so that ``k + e_ir <= 0.98``: DS accuracy at zero US
  accuracy stays >= 0.02 and the curve stays in [0, 1].

All ``alpha`` are above 1, so every frontier is concave in US accuracy.

The models of a seed are shared by the two settings of an upstream dataset: ``jft-25shot``
and ``jft-1shot`` simulated with the same seed hold the same models with the same US
accuracies, as in the paper where one pre-trained model is probed with 1 and 25 shots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scale_transfer.law import ds_acc as law_ds_acc

__all__ = ["SETTINGS", "TASKS", "Simulation", "simulate", "true_params"]

SETTINGS = ("jft-25shot", "jft-1shot", "in21k-25shot", "in21k-1shot")
TASKS = ("pets", "cifar100", "imagenet", "cars", "col_hist", "dtd", "caltech", "uc_merced")

#: Hull parameters (k, alpha, e_ir) of the JFT 25-shot setting, from the paper notes.
_JFT_25SHOT = {
    "pets": (0.87, 9.7, 0.041),
    "cifar100": (0.57, 3.8, 0.099),
    "imagenet": (0.80, 3.2, 0.124),
    "cars": (0.93, 10.2, 0.049),
    "col_hist": (0.03, 12.0, 0.114),
    "dtd": (0.41, 4.0, 0.202),
    "caltech": (0.33, 8.5, 0.059),
    "uc_merced": (0.15, 6.2, 0.033),
}
_UPSTREAMS = ("jft", "in21k")
#: Range of the US accuracy reached by the smallest and by the largest models.
_US_CAP = {"jft": (0.30, 0.60), "in21k": (0.55, 0.89)}
_PARAMS_RANGE = (3e7, 1.5e10)
_RESNET_MAX_PARAMS = 1e9
#: Share of the families: ResNets are few (16 of about 3,000 in the paper).
_RESNET_SHARE = 16 / 3000
_MIXER_SHARE = 0.47
_PREFIX = {"ViT": "vit", "MLP-Mixer": "mixer", "ResNet": "resnet"}
_BROKEN_SHARE = 0.025  # models that barely train upstream (US accuracy about 0)
_BAD_SHARE = 0.04  # models with bad hyper-parameters, far under the frontier
_NOISE_SD = 0.003
#: Cap on ``k + e_ir``, the DS error at zero US accuracy (the paper's largest is 0.979).
_MAX_K_PLUS_E_IR = 0.98


@dataclass(frozen=True)
class Simulation:
    """A simulated data set and the parameters that made it.

    Attributes
    ----------
    data : pandas.DataFrame
        Tidy frame, one row per (model, task): ``model, task, us_acc, ds_acc, upstream,
        shots, params, family``.
    truth : pandas.DataFrame
        One row per task: ``setting, task, k, alpha, e_ir, asymptote``.
    setting : str
        The setting simulated, e.g. ``"jft-25shot"``.
    seed : int or None
        The seed given to :func:`simulate`.
    """

    data: pd.DataFrame
    truth: pd.DataFrame
    setting: str
    seed: int | None


def _parse_setting(setting: str) -> tuple[str, int]:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    upstream, shots = setting.split("-")
    return upstream, int(shots.removesuffix("shot"))


def true_params(setting: str | None = None) -> pd.DataFrame:
    """Return the true frontier parameters of the simulator.

    Parameters
    ----------
    setting : str, optional
        One of :data:`SETTINGS`; all settings when omitted.

    Returns
    -------
    pandas.DataFrame
        Columns ``setting, task, k, alpha, e_ir, asymptote`` (``asymptote = 1 - e_ir``),
        one row per task (and setting), in the order of :data:`TASKS`.
    """
    settings = SETTINGS if setting is None else (setting,)
    rows = []
    for s in settings:
        upstream, shots = _parse_setting(s)
        for task in TASKS:
            k, alpha, e_ir = _JFT_25SHOT[task]
            asymptote = 1.0 - e_ir
            if upstream == "in21k":
                alpha *= 0.5
                asymptote *= 0.97
            if shots == 1:
                asymptote *= 0.8
                alpha *= 0.85
                k *= 1.15
            e_ir = 1.0 - asymptote
            k = min(k, _MAX_K_PLUS_E_IR - e_ir)
            rows.append((s, task, k, alpha, e_ir, asymptote))
    return pd.DataFrame(rows, columns=["setting", "task", "k", "alpha", "e_ir", "asymptote"])


def _seed_entropy(seed: int | None) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed}")
    return int(seed)


def _models(rng: np.random.Generator, n: int, upstream: str) -> pd.DataFrame:
    """Families, sizes, US accuracies and hyper-parameter quality of ``n`` models."""
    n_resnet = max(1, round(n * _RESNET_SHARE)) if n >= 20 else 0
    n_mixer = round((n - n_resnet) * _MIXER_SHARE / (1 - _RESNET_SHARE))
    family = np.array(["ResNet"] * n_resnet + ["MLP-Mixer"] * n_mixer, dtype=object)
    family = np.concatenate([family, np.full(n - family.size, "ViT", dtype=object)])
    family = rng.permutation(family)
    # Size: log-uniform-ish over 3e7..1.5e10, big models rarer.
    lo, hi = np.log10(_PARAMS_RANGE[0]), np.log10(_PARAMS_RANGE[1])
    size = rng.beta(1.1, 2.6, n)
    log_params = lo + (hi - lo) * size
    resnet = family == "ResNet"
    log_params[resnet] = np.minimum(log_params[resnet], np.log10(_RESNET_MAX_PARAMS))
    params = np.round(10.0**log_params)
    # US accuracy: a cap that grows with size, times a hyper-parameter quality factor.
    cap_lo, cap_hi = _US_CAP[upstream]
    s = (log_params - lo) / (hi - lo)
    cap = cap_lo + (cap_hi - cap_lo) * s**0.7
    us = cap * rng.beta(5.0, 1.5, n)
    broken = rng.random(n) < _BROKEN_SHARE
    us[broken] = rng.uniform(0.0, 0.03, broken.sum())
    bad = rng.random(n) < _BAD_SHARE
    quality = rng.exponential(1.0, n)  # per-model part of the gap to the frontier
    prefix = np.array([_PREFIX[f] for f in family], dtype=object)
    names = [f"{p}-{i:06d}" for i, p in enumerate(prefix)]
    return pd.DataFrame(
        {
            "model": names,
            "family": family,
            "params": params,
            "us_acc": np.clip(us, 0.0, 1.0),
            "bad": bad,
            "quality": quality,
        }
    )


def simulate(setting: str = "jft-25shot", n_models: int = 3000, seed: int | None = 0) -> Simulation:
    """Simulate the experiments of one setting: ``n_models`` models on the 8 tasks.

    Parameters
    ----------
    setting : str, default "jft-25shot"
        One of :data:`SETTINGS`.
    n_models : int, default 3000
        Number of pre-trained models; the data hold ``n_models * 8`` rows.
    seed : int or None, default 0
        Seed of the random numbers; ``None`` draws a fresh one. Same seed, same data.

    Returns
    -------
    Simulation
        The tidy data and the true parameters (:func:`true_params`).

    Raises
    ------
    ValueError
        For an unknown setting, fewer than one model or a negative seed.

    Examples
    --------
    >>> sim = simulate("jft-25shot", n_models=100, seed=1)
    >>> sim.data.shape
    (800, 8)
    """
    upstream, shots = _parse_setting(setting)
    if isinstance(n_models, bool) or not float(n_models).is_integer():
        raise ValueError(f"n_models must be a whole number; got {n_models!r}")
    n_models = int(n_models)
    if n_models < 1:
        raise ValueError(f"n_models must be at least 1, got {n_models}")
    entropy = _seed_entropy(seed)
    up = _UPSTREAMS.index(upstream)
    models = _models(np.random.default_rng([entropy, up]), n_models, upstream)
    rng = np.random.default_rng([entropy, up, shots])
    truth = true_params(setting)

    us = models["us_acc"].to_numpy()
    blocks = []
    for row in truth.itertuples(index=False):
        frontier = law_ds_acc(us, row.k, row.alpha, row.e_ir)
        scale = (0.02 + 0.04 * min(row.k, 1.0)) * (0.5 + 1.5 * (1.0 - frontier))
        share = 0.4 * models["quality"].to_numpy() + 0.6 * rng.exponential(1.0, n_models)
        gap = scale * share
        bad = models["bad"].to_numpy()
        gap[bad] += rng.uniform(0.05, 0.45, bad.sum())
        ds = frontier - gap + rng.normal(0.0, _NOISE_SD, n_models)
        blocks.append(
            pd.DataFrame(
                {
                    "model": models["model"],
                    "task": row.task,
                    "us_acc": us,
                    "ds_acc": np.clip(ds, 0.0, 1.0),
                    "upstream": upstream,
                    "shots": shots,
                    "params": models["params"],
                    "family": models["family"],
                }
            )
        )
    data = pd.concat(blocks, ignore_index=True)
    return Simulation(data=data, truth=truth, setting=setting, seed=seed)
