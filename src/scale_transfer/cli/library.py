"""Commands of the library: validate, simulate, fit, summary, predict, report, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scale_transfer.cli.common import (
    Adaptation,
    Centered,
    DrawsOption,
    Estimand,
    Extrapolation,
    IntervalKind,
    Kind,
    Law,
    Likelihood,
    Pooling,
    Target,
    TuneOption,
    app,
    check_out,
    check_prob,
    fail,
    new_models_us_acc,
    parse_effects,
    read_truth,
    sampler_options,
    write_csv,
    write_table,
    zoo_or_file,
)
from scale_transfer.config import TOP_POINTS


@app.command()
def validate(
    file: Annotated[
        Path, typer.Argument(help="Tidy CSV or Parquet file (or a timm results folder).")
    ],
    percent: Annotated[
        bool, typer.Option("--percent", help="Accuracies are in percent: divide by 100.")
    ] = False,
) -> None:
    """Check a tidy data file; exit 0 if it is good, 2 with one clear line if not.

    Columns: model, task, us_acc, ds_acc (fractions in [0, 1]); optional upstream, shots,
    params, family.
    """
    from scale_transfer.data import validate as _validate

    report = _validate(zoo_or_file(file, percent), percent=percent)
    typer.echo(str(report))
    typer.echo("ok")


@app.command()
def simulate(
    setting: Annotated[
        str, typer.Option(help="jft-25shot, jft-1shot, in21k-25shot, in21k-1shot")
    ] = ("jft-25shot"),
    n_models: Annotated[int, typer.Option("--n-models", help="Number of models.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Tidy CSV to write.")] = Path("data.csv"),
    truth: Annotated[Path | None, typer.Option(help="CSV of the true parameters.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Simulate the paper's experiments (8 tasks) with known true parameters."""
    from scale_transfer.simulate import simulate as _simulate

    for p in (out, truth):
        check_out(p, overwrite)
    sim = _simulate(setting, n_models=n_models, seed=seed)
    write_csv(sim.data, out, overwrite)
    typer.echo(f"wrote {out}: {len(sim.data)} rows, {sim.data.task.nunique()} tasks")
    if truth is not None:
        cols = ["task", "k", "alpha", "e_ir", "asymptote", "setting"]
        write_csv(sim.truth[[c for c in cols if c in sim.truth]], truth, overwrite)
        typer.echo(f"wrote {truth}")


@app.command()
def fit(
    data: Annotated[
        Path,
        typer.Argument(
            help="Tidy CSV or Parquet file; or a timm results folder, the scaling benchmark's CSV."
        ),
    ],
    out: Annotated[Path, typer.Option(help="netCDF file for the fit, e.g. models/NAME.nc.")],
    target: Annotated[
        Target,
        typer.Option(
            help=f"Fit all points, the upper hull, or {TOP_POINTS} (top: with --likelihood "
            "frontier)."
        ),
    ] = Target.all,
    pooling: Annotated[Pooling, typer.Option(help="Pooling across tasks.")] = Pooling.hierarchical,
    likelihood: Annotated[Likelihood, typer.Option(help="Residual model.")] = Likelihood.gaussian,
    by_setting: Annotated[
        bool, typer.Option("--by-setting", help="Add a setting level (upstream x shots).")
    ] = False,
    effects: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated columns whose levels get their own curve offsets, partially "
            "pooled (e.g. family,extra_data on timm; docs/model.md)."
        ),
    ] = None,
    discrepancy: Annotated[
        bool,
        typer.Option("--discrepancy", help="Add a smooth term beside the law (docs/model.md)."),
    ] = False,
    law: Annotated[
        Law,
        typer.Option(
            help="error: the paper's law in error space; odds: acc_DS = c sigmoid(a + alpha "
            "logit acc_US), Gaussian scatter in logit space (docs/validation.md); auto: odds "
            "for Gaussian fits of all points without effects or discrepancy, else error."
        ),
    ] = Law.auto,
    extrapolation: Annotated[
        Extrapolation,
        typer.Option(
            help="lfo: a drift layer learned by leave-future-out inside the data widens and "
            "shifts new-model predictions beyond it, with a self-check (odds law only); "
            "auto: lfo for the odds law, else none."
        ),
    ] = Extrapolation.auto,
    draws: DrawsOption = None,
    tune: TuneOption = None,
    chains: Annotated[int, typer.Option(help="Chains.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sampler: Annotated[str, typer.Option(help="nutpie (default) or numpyro.")] = "nutpie",
    adaptation: Annotated[
        Adaptation,
        typer.Option(
            help="nutpie mass matrix; auto: low_rank for the frontier and odds law "
            "(diag where its effects have over 300 levels x groups)."
        ),
    ] = Adaptation.auto,
    percent: Annotated[bool, typer.Option("--percent", help="Accuracies in percent.")] = False,
    strict: Annotated[bool, typer.Option(help="Fail (exit 3) if convergence fails.")] = False,
    progress: Annotated[bool, typer.Option(help="Show the sampler's progress bar.")] = True,
    centered: Annotated[
        Centered,
        typer.Option(
            help="Hierarchy parametrization: auto (centred for data-rich tasks and hulls), yes, no."
        ),
    ] = Centered.auto,
    target_accept: Annotated[
        float | None,
        typer.Option(
            "--target-accept",
            help="NUTS target acceptance in (0, 1); default auto (0.99 for the frontier "
            "likelihood on all points and for Gaussian fits sampled from sufficient "
            "statistics, else 0.95).",
        ),
    ] = None,
    frontier: Annotated[
        bool | None,
        typer.Option(
            "--frontier/--no-frontier",
            help=f"Also fit the best models' frontier ({TOP_POINTS}, truncated frontier "
            "likelihood; about 2 minutes at 3,000 models x 8 "
            "tasks): the asymptotes that summary and report give, calibrated on simulations "
            "(docs/calibration.md). Default: on where the fit itself is a typical model's "
            "(all points, gaussian or student_t).",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Fit the hierarchical power-law model with MCMC and save it to netCDF.

    By default also the frontier fit whose asymptotes summary and report give (--frontier).
    """
    from scale_transfer.config import ModelConfig
    from scale_transfer.data import read_tidy
    from scale_transfer.extrapolation import refit_verdicts
    from scale_transfer.fitting import wants_frontier
    from scale_transfer.posterior import fit as _fit
    from scale_transfer.sampling import ConvergenceError

    check_out(out, overwrite)
    # every option checked before the data are read or anything is compiled
    config = ModelConfig(
        target=target.value,
        pooling=pooling.value,
        likelihood=likelihood.value,
        by_setting=by_setting,
        effects=tuple(e.strip() for e in (effects or "").split(",") if e.strip()),
        discrepancy=discrepancy,
        centered={"auto": "auto", "yes": True, "no": False}[centered.value],
        law=law.value,
        extrapolation=extrapolation.value,
    )
    sampler_config = sampler_options(locals())
    with_frontier = wants_frontier(config) if frontier is None else frontier
    if with_frontier and not wants_frontier(config):
        fail(
            f"--frontier adds a frontier fit to a typical model's; this fit (target="
            f"{target.value}, likelihood={likelihood.value}) estimates the frontier itself"
        )
    df = read_tidy(zoo_or_file(data, percent), percent=percent)
    more = ["drift layer", "self-check"] if config.extrapolation == "lfo" else []
    more += ["frontier (for the asymptotes)"] if with_frontier else []
    typer.echo(
        f"fitting {len(df)} points, {df.task.nunique()} tasks: target={target.value}, "
        f"pooling={pooling.value}, likelihood={likelihood.value}, law={config.law}, "
        f"extrapolation={config.extrapolation}"
        + (f"; {len(more)} more fit(s): {', '.join(more)}" if more else ""),
        err=True,
    )
    try:
        post = _fit(df, config, sampler_config, frontier=with_frontier)
    except ConvergenceError as err:
        fail(str(err), code=3)
    post.save(out, overwrite=overwrite)
    typer.echo(post.diagnostics.verdict())
    for line in refit_verdicts(post.refits):
        typer.echo(line)
    typer.echo(f"wrote {out}")


@app.command()
def summary(
    model: Annotated[Path, typer.Argument(help="A fit written by 'scale-transfer fit'.")],
    prob: Annotated[float, typer.Option(help="Interval probability.")] = 0.9,
    interval: Annotated[IntervalKind, typer.Option(help="eti or hdi.")] = IntervalKind.eti,
    var: Annotated[str, typer.Option(help="asymptote, e_ir, k or alpha.")] = "asymptote",
    estimand: Annotated[
        Estimand,
        typer.Option(
            help="Whose law: frontier (the best models'; a fit of all points gives its "
            "frontier fit's), own (the fit's own: a typical model's for a fit of all "
            "points), auto: frontier where the fit carries a frontier fit, else own."
        ),
    ] = Estimand.auto,
    out: Annotated[Path | None, typer.Option(help="CSV to write.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Posterior of the asymptote (1 - e_IR) per task, and of an unseen task.

    Columns: task, mean, lower, upper, prob, interval kind (eti: equal-tailed; hdi:
    highest density), and setting, median, sd, n, estimand (frontier or typical model:
    whose asymptote).
    """
    from scale_transfer.posterior import SUMMARY_VARS, Posterior
    from scale_transfer.report.text import whose_asymptote

    check_out(out, overwrite)
    check_prob(prob)
    if var not in SUMMARY_VARS:
        fail(f"--var must be one of {', '.join(SUMMARY_VARS)}; got {var!r}")
    post = Posterior.load(model)
    whose = post.estimand_fit(estimand.value)
    df = post.summary(prob=prob, interval_kind=interval.value, var=var, estimand=estimand.value)
    df = df.rename(columns={"interval": "interval_kind"})
    if var in ("asymptote", "e_ir"):  # on stderr: the table stays clean for pipes
        typer.echo(f"{var} of {whose_asymptote(whose.config)}", err=True)
    cols = ["task", "mean", "lower", "upper", "prob", "interval_kind", "setting", "median", "sd"]
    write_table(df[cols + ["n", "estimand"]], out, overwrite)


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="A fit written by 'scale-transfer fit'.")],
    us_acc: Annotated[
        list[float] | None,
        typer.Option("--us-acc", help="Upstream accuracies, e.g. 0.7 0.8 1.0."),
    ] = None,
    prob: Annotated[float, typer.Option(help="Interval probability.")] = 0.9,
    kind: Annotated[
        Kind,
        typer.Option(
            help="curve: the law; new-model: a new model; hull: the upper hull (best so far) "
            "of a set of new models (give --models-us-acc or --models-csv)."
        ),
    ] = Kind.curve,
    interval: Annotated[IntervalKind, typer.Option(help="eti or hdi.")] = IntervalKind.eti,
    models_us_acc: Annotated[
        list[float] | None,
        typer.Option(
            "--models-us-acc", help="--kind hull: US accuracies of the new models, e.g. 0.8 0.85."
        ),
    ] = None,
    models_csv: Annotated[
        Path | None,
        typer.Option(help="--kind hull: CSV with a column us_acc, one row per new model."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the new models' draws (new-model, hull).")] = 0,
    effect: Annotated[
        list[str] | None,
        typer.Option(
            help="Fits with --effects: the new models' level, COLUMN=LEVEL (repeat the option), "
            "e.g. --effect family=vit; a column not given gets the population curve (curve) "
            "or a level drawn from the population (new-model)."
        ),
    ] = None,
    given: Annotated[
        list[str] | None,
        typer.Option(
            help="A new model's measured accuracy on a task, TASK=ACC (repeat the option), "
            "e.g. --given sketch=0.41: its other tasks are predicted given it; TASK=ACC,ACC "
            "gives one per --us-acc."
        ),
    ] = None,
    given_csv: Annotated[
        Path | None,
        typer.Option(
            help="CSV with one row per new model: column us_acc and one column per given "
            "task (an empty cell: not measured); replaces --us-acc and --given."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="CSV to write.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Extrapolated downstream accuracy at the given upstream accuracies (no resampling).

    Columns: task, us_acc, mean, lower, upper, and setting, prob, interval, kind. With
    --kind hull: the best downstream accuracy that a set of new models (at the US
    accuracies of --models-us-acc or --models-csv) will show at each --us-acc, read off
    their upper hull; meaningful for fits to all points (the frontier likelihood).

    With --given or --given-csv: each new model's other tasks, given its measured ones
    (kind conditional, and a column given).
    """
    from scale_transfer.conditional import given_options
    from scale_transfer.posterior import Posterior

    check_out(out, overwrite)
    check_prob(prob)
    us_acc, cond = given_options(
        us_acc, given, given_csv, kind.value, hull_models=bool(models_us_acc) or bool(models_csv)
    )
    post = Posterior.load(model)
    if cond is not None:
        df = post.predict(us_acc, prob=prob, interval_kind=interval.value, seed=seed, given=cond)
    elif kind is Kind.hull:
        new = new_models_us_acc(models_us_acc, models_csv)
        df = post.predict_hull(new, us_acc, prob=prob, interval_kind=interval.value, seed=seed)
    else:
        if models_us_acc or models_csv is not None:
            raise ValueError("--models-us-acc and --models-csv go with --kind hull")
        df = post.predict(
            us_acc,
            prob=prob,
            kind=kind.value,
            interval_kind=interval.value,
            seed=seed,
            effects=parse_effects(effect),
        )
    df["interval_kind"] = df["interval"]  # the name summary uses; 'interval' kept as it was
    cols = ["task", "us_acc", "mean", "lower", "upper", "setting", "prob", "interval", "kind"]
    write_table(df[cols + ["interval_kind"] + (["given"] if cond else [])], out, overwrite)


@app.command()
def report(
    model: Annotated[Path, typer.Argument(help="A fit written by 'scale-transfer fit'.")],
    out: Annotated[Path, typer.Option(help="Folder for report.html, report.md and figures.")],
    prob: Annotated[float, typer.Option(help="Interval probability.")] = 0.9,
    interval: Annotated[IntervalKind, typer.Option(help="eti or hdi.")] = IntervalKind.eti,
    lsq: Annotated[
        bool, typer.Option("--lsq/--no-lsq", help="Add the least-squares baseline (bootstrap).")
    ] = True,
    truth: Annotated[
        Path | None, typer.Option(help="CSV of true parameters (from 'simulate --truth').")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title of the report.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing report files.")] = False,
) -> None:
    """Write an HTML report (one self-contained file) and its Markdown twin for a fit.

    Data summary, model and priors, convergence verdict, asymptote table, extrapolation
    to US accuracy 0.7-1.0 and figures, every interval named with its kind and probability.
    """
    import time

    from scale_transfer.extrapolation import refit_verdicts
    from scale_transfer.lsq import fit_lsq_frame
    from scale_transfer.posterior import Posterior
    from scale_transfer.report import report_paths, write_report

    check_out(out, overwrite, folder=True)
    check_prob(prob)
    existing = [p for p in report_paths(out).values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass --overwrite to replace the report")
    t0 = time.perf_counter()
    truth_df = read_truth(truth) if truth is not None else None
    post = Posterior.load(model)
    lsq_df = None
    if lsq:
        typer.echo("fitting the least-squares baseline (1000 bootstrap resamples)...", err=True)
        # the paper's estimate of what the fit estimates: a frontier fit's is the hull's
        frontier = post.estimand_fit().config.estimand == "frontier"
        lsq_target = "hull" if frontier else post.config.target
        lsq_df = fit_lsq_frame(post.data, target=lsq_target, prob=prob)
    paths = write_report(
        post,
        out,
        prob=prob,
        lsq=lsq_df,
        truth=truth_df,
        title=title,
        interval_kind=interval.value,
        overwrite=overwrite,
    )
    typer.echo(post.diagnostics.verdict())
    for line in refit_verdicts(post.refits):
        typer.echo(line)
    typer.echo(f"wrote {paths['html']} and {paths['md']} ({time.perf_counter() - t0:.1f} s)")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for data, truth, fit and report.")],
    n_models: Annotated[int, typer.Option("--n-models", help="Simulated models.")] = 3000,
    draws: DrawsOption = None,
    tune: TuneOption = None,
    chains: Annotated[int, typer.Option(help="Chains.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed (simulation and sampler).")] = 0,
    target: Annotated[
        Target,
        typer.Option(
            help=f"Fit all points, the upper hull, or {TOP_POINTS} (top: with --likelihood "
            "frontier)."
        ),
    ] = Target.top,
    likelihood: Annotated[
        Likelihood | None,
        typer.Option(help="Residual model; default frontier for --target top, else gaussian."),
    ] = None,
    prob: Annotated[float, typer.Option(help="Interval probability.")] = 0.9,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files in --out.")] = False,
) -> None:
    """Simulate the paper's JFT 25-shot experiments, fit them and write a report.

    Writes DIR/data.csv (simulated data), DIR/truth.csv (the true parameters), DIR/fit.nc
    (the hierarchical fit) and DIR/report.html + DIR/report.md, which compare the Bayesian
    intervals with least squares and with the truth. By default the frontier fit whose
    asymptote intervals were calibrated on such simulations (--target top); about three
    minutes on two cores.
    """
    import time

    from scale_transfer.config import ModelConfig
    from scale_transfer.lsq import fit_lsq_frame
    from scale_transfer.posterior import fit as _fit
    from scale_transfer.report import report_paths, write_report
    from scale_transfer.report.text import whose_asymptote
    from scale_transfer.sampling import resolve_tuning
    from scale_transfer.simulate import simulate as _simulate

    check_out(out, overwrite, folder=True)
    check_prob(prob)
    if likelihood is None:
        likelihood = Likelihood.frontier if target is Target.top else Likelihood.gaussian
    sc = sampler_options(dict(draws=draws, tune=tune, chains=chains, seed=seed))
    model_config = ModelConfig(target=target.value, likelihood=likelihood.value)
    resolved = resolve_tuning(sc, model_config)  # bad values refused above, before any work
    draws, tune = resolved.draws, resolved.tune
    files = {"fit": out / "fit.nc", "data": out / "data.csv", "truth": out / "truth.csv"}
    existing = [p for p in [*files.values(), *report_paths(out).values()] if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]} exists{more}; pass --overwrite to replace them")
    t_all = time.perf_counter()

    def step(i: int, text: str) -> float:
        typer.echo(f"[{i}/5] {text}")
        return time.perf_counter()

    def done(t0: float, extra: str = "") -> None:
        typer.echo(f"      done in {time.perf_counter() - t0:.1f} s{extra}")

    t0 = step(1, f"simulating the JFT 25-shot experiments: {n_models} models x 8 tasks")
    sim = _simulate("jft-25shot", n_models=n_models, seed=seed)
    done(t0, f": {len(sim.data)} points")

    t0 = step(
        2,
        f"fitting the hierarchical model (target={target.value}, likelihood={likelihood.value}; "
        f"{chains} chains x {draws} draws after {tune} tuning steps; compiling takes about 20 s "
        "the first time)",
    )
    post = _fit(
        sim.data,
        target=target.value,
        pooling="hierarchical",
        likelihood=likelihood.value,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress=True,
    )
    done(t0, f": {post.diagnostics.verdict().split('. ')[0]}")

    t0 = step(3, "fitting the least-squares baseline (the paper's method, 1000 bootstraps)")
    # the paper's estimate of the frontier: the hull (for a hull fit, and for a top fit)
    lsq_target = "hull" if target.value == "top" else target.value
    lsq = fit_lsq_frame(sim.data, target=lsq_target, prob=prob, seed=seed)
    done(t0)

    t0 = step(4, f"saving {files['data']}, {files['truth']} and {files['fit']}")
    write_csv(sim.data, files["data"], overwrite)
    write_csv(sim.truth, files["truth"], overwrite)
    post.save(files["fit"], overwrite=overwrite)
    done(t0)

    t0 = step(5, "writing the report (figures, tables)")
    paths = write_report(
        post,
        out,
        prob=prob,
        lsq=lsq,
        truth=sim.truth,
        title=f"scale-transfer demo: simulated JFT 25-shot, {n_models} models, {target.value} fit",
        overwrite=overwrite,
    )
    done(t0)

    s = post.summary(prob=prob)
    s["truth"] = s["task"].map(dict(zip(sim.truth["task"], sim.truth["asymptote"], strict=True)))
    s["lsq"] = s["task"].map(dict(zip(lsq["task"], lsq["asymptote"], strict=True)))
    typer.echo(
        f"\nasymptote 1 - e_IR of {whose_asymptote(post.config)}: posterior median and "
        f"{100 * prob:g}% equal-tailed interval"
    )
    cols = ["task", "median", "lower", "upper", "lsq", "truth"]
    typer.echo(s[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))
    typer.echo(f"\n{post.diagnostics.verdict()}")
    typer.echo(f"report: {paths['html']} (and {paths['md']})")
    typer.echo(f"total {time.perf_counter() - t_all:.1f} s")
