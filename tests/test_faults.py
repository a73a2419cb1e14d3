"""Faults a user meets: interrupts, concurrent writers, damaged fit files, bad inputs.

After every fault: no output file holds a wrong or partial result, no temporary file is
left behind, and the command says what happened in one line (no traceback).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from scale_transfer.cli import main
from scale_transfer.fitfile import (
    CHECKSUM_ATTR,
    FitFileError,
    OlderFitFileWarning,
    draws_checksum,
)
from scale_transfer.posterior import Posterior, fit
from scale_transfer.publish import (
    OutputError,
    check_writable,
    interrupts_held,
    signals_as_exceptions,
    staged,
    write_atomic,
)
from scale_transfer.simulate import simulate

pytestmark = pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")

#: A tiny fit: the hull of 40 simulated models per task, one short chain.
FIT_ARGS = ["--target", "hull", "--chains", "1", "--no-progress"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def data_csv(folder: Path) -> Path:
    path = folder / "d.csv"
    simulate("jft-25shot", 40, 0).data.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def post(data_csv: Path) -> Posterior:
    """The tiny fit; it also compiles the model that the in-process CLI fits reuse."""
    from scale_transfer.data import read_tidy

    df = read_tidy(data_csv)
    return fit(df, target="hull", draws=20, tune=20, chains=1, seed=1, progress=False)


@pytest.fixture(scope="module")
def saved(post: Posterior, folder: Path) -> Path:
    return post.save(folder / "fit.nc")


def names(path: Path) -> list[str]:
    """Every entry of a folder, hidden ones (a staged file) included."""
    return sorted(p.name for p in path.iterdir())


def one_line(err: str) -> str:
    """Return the one error line of a command's stderr (progress lines aside); no traceback."""
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def cli(*args: object, **kw: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scale_transfer.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


# -------------------------------------------------------------------------- publishing
def test_staged_file_is_published_or_removed(tmp_path: Path) -> None:
    dest = tmp_path / "t.csv"
    with staged(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".t.csv.") and tmp.suffix == ".csv"
        tmp.write_text("one")
        assert not dest.exists()  # not before the block ends
    assert dest.read_text() == "one" and names(tmp_path) == ["t.csv"]
    for fault in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(fault)), staged(dest, overwrite=True) as tmp:
            tmp.write_text("half")
            raise fault
        assert dest.read_text() == "one" and names(tmp_path) == ["t.csv"]
    with pytest.raises(FileExistsError, match="t.csv exists"):
        write_atomic(dest, lambda p: p.write_text("two"))
    write_atomic(dest, lambda p: p.write_text("two"), overwrite=True)
    assert dest.read_text() == "two" and names(tmp_path) == ["t.csv"]


def test_two_writers_one_name_exactly_one_wins(tmp_path: Path) -> None:
    dest = tmp_path / "fit.nc"
    a_ctx, b_ctx = staged(dest), staged(dest)
    a, b = a_ctx.__enter__(), b_ctx.__enter__()  # both past the early check
    a.write_text("a")
    b.write_text("b")
    b_ctx.__exit__(None, None, None)  # b publishes first
    with pytest.raises(FileExistsError, match="fit.nc exists"):
        a_ctx.__exit__(None, None, None)
    assert dest.read_text() == "b" and names(tmp_path) == ["fit.nc"]


def test_two_processes_one_name(tmp_path: Path) -> None:
    """Eight processes publish to one name at once, without overwrite: one wins."""
    code = (
        "import sys, time; from scale_transfer.publish import write_atomic\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "try:\n"
        "    write_atomic(sys.argv[1], lambda p: p.write_text(sys.argv[3] * 100000))\n"
        "except FileExistsError:\n"
        "    sys.exit(2)\n"
    )
    dest = tmp_path / "out.txt"
    start = time.time() + 3.0
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(dest), str(start), str(i)])
        for i in range(8)
    ]
    codes = [p.wait(timeout=60) for p in procs]
    assert sorted(codes) == [0] + [2] * 7, codes
    winner = str(codes.index(0))
    assert dest.read_text() == winner * 100000  # whole, and the winner's
    assert names(tmp_path) == ["out.txt"]


def test_check_writable(tmp_path: Path) -> None:
    check_writable(tmp_path / "new" / "deeper" / "f.nc")
    check_writable(tmp_path / "new", folder=True)
    assert names(tmp_path) == []  # the probe is gone, nothing created
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_writable(a_file / "x.nc")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_writable(a_file, folder=True)
    with pytest.raises(OutputError, match="is a folder"):
        check_writable(tmp_path)
    if Path("/proc/self").exists():
        with pytest.raises(OutputError, match="no file can be created in /proc"):
            check_writable("/proc/x.nc")


def test_sigterm_raises_inside_the_block(tmp_path: Path) -> None:
    from scale_transfer.publish import Terminated

    dest = tmp_path / "x.txt"
    with pytest.raises(Terminated), signals_as_exceptions(), staged(dest) as tmp:
        tmp.write_text("part")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert names(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_lost_ctrl_c_still_stops_the_publish(tmp_path: Path) -> None:
    # an interrupt raised inside a C callback (numba's compiler runs one) is printed as
    # "Exception ignored" and lost; the remembered Ctrl-C still keeps the file unpublished
    dest = tmp_path / "x.txt"
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), signals_as_exceptions(), staged(dest) as tmp:
        tmp.write_text("part")
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass  # what the callback's caller does with it
    assert names(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is before
    with signals_as_exceptions(), staged(dest) as tmp:  # the next block starts afresh
        tmp.write_text("whole")
    assert dest.read_text() == "whole"


def test_a_ctrl_c_lost_in_a_c_callback_is_not_reported_as_ignored(monkeypatch) -> None:
    # Python reports an exception raised in a callback from C ("Exception ignored ...", with
    # its traceback) through sys.unraisablehook; within the block a lost Ctrl-C is not
    # reported (it is raised again by check_interrupted), anything else still is
    import ctypes

    from scale_transfer.publish import check_interrupted

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(type(u.exc_value)))
    interrupt = ctypes.CFUNCTYPE(None)(lambda: signal.raise_signal(signal.SIGINT))

    def fail() -> None:
        raise ValueError("not an interrupt")

    other = ctypes.CFUNCTYPE(None)(fail)
    with pytest.raises(KeyboardInterrupt), signals_as_exceptions():
        other()
        interrupt()  # lost in the callback, as in numba's compiler
        check_interrupted()
    assert seen == [ValueError]
    other()  # outside the block the hook is the one before
    assert seen == [ValueError, ValueError]


def test_ctrl_c_within_interrupts_held_comes_at_the_end_of_the_block() -> None:
    """A Ctrl-C during compilation is held back (numba's compiler can crash on it)."""
    before = signal.getsignal(signal.SIGINT)
    went_on = []
    with pytest.raises(KeyboardInterrupt), signals_as_exceptions():
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)
            went_on.append("after the signal")  # not raised here
        went_on.append("after the block")  # raised before this
    assert went_on == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) == before
    with interrupts_held():  # no signal: nothing happens
        went_on.append("quiet")
    assert went_on[-1] == "quiet" and signal.getsignal(signal.SIGINT) == before
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # an ignored Ctrl-C stays ignored
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, before)


# ------------------------------------------------------------------------- fit files
def _edited(saved: Path, out: Path, edit) -> Path:  # noqa: ANN001
    with xr.open_datatree(saved) as f:
        dt = f.load()
    edit(dt)
    dt.to_netcdf(out)
    return out


def test_checksum_is_stored_and_verified(saved: Path, post: Posterior) -> None:
    loaded = Posterior.load(saved)
    assert loaded.file_info.checksum == draws_checksum(post.dt)
    assert loaded.file_info.notes == []
    with xr.open_datatree(saved) as f:
        assert f.attrs[CHECKSUM_ATTR] == loaded.file_info.checksum


def _zero_posterior(dt: xr.DataTree) -> None:
    ds = dt["posterior"].to_dataset()
    dt["posterior"] = xr.DataTree(ds * 0)  # the whole posterior zeros, attrs kept


def _set_attr(name: str, value: str | None):  # noqa: ANN202
    def edit(dt: xr.DataTree) -> None:
        if value is None:
            del dt.attrs[name]
        else:
            dt.attrs[name] = value

    return edit


def _config_edit(change):  # noqa: ANN001, ANN202
    def edit(dt: xr.DataTree) -> None:
        d = json.loads(dt.attrs["model_config"])
        change(d)
        dt.attrs["model_config"] = json.dumps(d)

    return edit


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (_zero_posterior, "do not match their checksum"),
        (lambda dt: dt["posterior"].__setitem__("k", dt["posterior"]["k"] * 1.01), "checksum"),
        (lambda dt: dt.__delitem__("sample_stats"), "group(s) sample_stats missing"),
        (_set_attr("diagnostics", None), "attribute(s) diagnostics missing"),
        (_set_attr("model_config", "{not json"), "'model_config' is not valid JSON"),
        (_set_attr("sampler_config", "[1, 2]"), "'sampler_config' is not a JSON object"),
        (_config_edit(lambda d: d.pop("target")), "does not match its hash"),
        (_config_edit(lambda d: d.update(pooling="bogus")), "model config is not valid"),
        (
            lambda dt: (
                _config_edit(lambda d: d.update(tempering=2.0))(dt),
                _set_attr("scale_transfer_version", "9.0.0")(dt),
            ),
            "does not know: tempering (written by scale-transfer 9.0.0; this is",
        ),
    ],
    ids=[
        "zeros",
        "edited-draw",
        "no-group",
        "no-attr",
        "bad-json",
        "not-object",
        "missing-key",
        "bad-value",
        "newer-version",
    ],
)
def test_edited_files_give_one_line(saved: Path, tmp_path: Path, edit, says: str) -> None:  # noqa: ANN001
    bad = _edited(saved, tmp_path / "bad.nc", edit)
    with pytest.raises(FitFileError, match="bad.nc") as e:
        Posterior.load(bad)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_truncated_foreign_and_empty_files(saved: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    truncated = tmp_path / "trunc.nc"
    truncated.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(foreign)
    text = tmp_path / "text.nc"
    text.write_text("model,task\n")
    empty = tmp_path / "empty.nc"
    empty.touch()
    for path, says in (
        (truncated, "cannot be read as netCDF"),
        (foreign, "is not a scale-transfer fit (no model_config"),
        (text, "cannot be read as netCDF"),
        (empty, "is empty"),
    ):
        with pytest.raises(FitFileError, match=path.name):
            Posterior.load(path)
        for command in (["summary", str(path)], ["predict", str(path), "--us-acc", "0.9"]):
            with pytest.raises(SystemExit) as e:
                main(command)
            line = one_line(capsys.readouterr().err)
            assert e.value.code == 2 and path.name in line and says in line, line


def test_older_file_without_checksum_loads_and_says_so(saved: Path, tmp_path: Path) -> None:
    older = _edited(saved, tmp_path / "older.nc", _set_attr(CHECKSUM_ATTR, None))
    with pytest.warns(OlderFitFileWarning, match=r"older.nc has no checksum .*scale-transfer 0"):
        loaded = Posterior.load(older)
    assert loaded.file_info.checksum is None
    assert "older format" in loaded.file_info.notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OlderFitFileWarning)
        again = loaded.save(tmp_path / "again.nc")  # saving again adds the checksum
    assert Posterior.load(again).file_info.checksum == draws_checksum(loaded.dt)


def _nan_padded(dt: xr.DataTree) -> None:
    """An older file of a fit cut short: its last draws NaN, and no checksum."""
    ds = dt["posterior"].to_dataset()
    dt["posterior"] = xr.DataTree(ds.where(ds["draw"] < 10))
    del dt.attrs[CHECKSUM_ATTR]


def test_older_file_of_a_cut_short_fit_is_refused(saved: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bad = _edited(saved, tmp_path / "cut.nc", _nan_padded)
    with pytest.raises(SystemExit) as e:
        main(["summary", str(bad)])
    line = one_line(capsys.readouterr().err)
    assert e.value.code == 2 and "cut.nc" in line and "not all finite" in line, line


# --------------------------------------------------------------------------- interrupts
def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    return timer


def _interrupt_until(stop: threading.Event, first: float, every: float = 2.0) -> None:
    """Press Ctrl-C after ``first`` seconds, then again every ``every`` until ``stop``."""

    def run() -> None:
        if stop.wait(first):
            return
        while not stop.is_set():
            signal.raise_signal(signal.SIGINT)
            if stop.wait(every):
                return

    threading.Thread(target=run, daemon=True).start()


@pytest.mark.parametrize(("tune", "draws"), [(10**6, 20), (20, 10**6)], ids=["tune", "draw"])
def test_ctrl_c_while_sampling_propagates(post: Posterior, tune: int, draws: int) -> None:
    # time_limit guards the suite: an interrupt that is lost ends in SamplingTimeout (a
    # failure), not in a fit of a million steps
    stop = threading.Event()
    t0 = time.perf_counter()
    _interrupt_until(stop, 1.0)
    try:
        fit(post.data, target="hull", tune=tune, draws=draws, chains=2, progress=False,
            time_limit=120)  # fmt: skip
    except KeyboardInterrupt:
        stop.set()
    else:
        stop.set()
        pytest.fail("the fit returned: the interrupt did not stop it")
    assert time.perf_counter() - t0 < 20  # the chains stopped; no cut-short result


@pytest.mark.parametrize("phase", ["tune", "draw"])
def test_cli_ctrl_c_while_sampling_exits_130(
    post: Posterior, data_csv: Path, tmp_path: Path, capsys, phase: str
) -> None:  # noqa: ANN001
    out = tmp_path / "fit.nc"
    steps = (
        ["--tune", "1000000", "--draws", "20"]
        if phase == "tune"
        else ["--tune", "20", "--draws", "1000000"]
    )
    capsys.readouterr()
    _interrupt_after(2.0)
    with pytest.raises(SystemExit) as e:
        main(["fit", str(data_csv), "--out", str(out), *FIT_ARGS, *steps])
    assert e.value.code == 130
    assert "interrupted" in one_line(capsys.readouterr().err)
    assert names(tmp_path) == []


def test_cli_ctrl_c_while_compiling_exits_130(
    data_csv: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from scale_transfer.compile_cache import CACHE_DIR_ENV

    out = tmp_path / "fit.nc"
    # an empty package cache of compiled models: this process compiles (an earlier test's
    # entry would load in well under the 3 s below, and the fit would end before the signal)
    env = os.environ | {CACHE_DIR_ENV: str(tmp_path_factory.mktemp("empty-cache"))}
    p = cli(
        "fit", data_csv, "--out", out, *FIT_ARGS, "--draws", "20", "--tune", "20", "--seed", "7",
        env=env,
    )  # fmt: skip
    line = p.stderr.readline()  # "fitting ...": data read, the model is being built
    assert line.startswith("fitting"), line
    time.sleep(3.0)  # building and compiling takes ~20 s
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in one_line(err)
    assert names(tmp_path) == []


# a CLI process whose fit is the saved one (no sampling), with faults injected into the save
FAKE_FIT = """
import os, signal, sys, time
import xarray as xr
import scale_transfer.posterior as P

mode, saved, start, *argv = sys.argv[1:]
fitted = P.Posterior.load(saved)

def fake_fit(*args, **kwargs):
    time.sleep(max(0.0, float(start) - time.time()))
    return fitted

P.fit = fake_fit
real = xr.DataTree.to_netcdf

def to_netcdf(self, path, *args, **kwargs):
    real(self, path, *args, **kwargs)
    if mode == "race":
        time.sleep(1.0)  # both writers hold a finished temporary file at once
        return
    with open(path, "r+b") as fh:  # half written
        fh.truncate(os.path.getsize(path) // 2)
    os.kill(os.getpid(), signal.SIGINT if mode == "sigint" else signal.SIGTERM)
    time.sleep(30)

xr.DataTree.to_netcdf = to_netcdf
from scale_transfer.cli import main
main(argv)
"""


def _fake_fit(mode: str, saved: Path, data: Path, out: Path, start: float) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            FAKE_FIT,
            mode,
            str(saved),
            str(start),
            "fit",
            str(data),
            "--out",
            str(out),
            *FIT_ARGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("mode", "code", "says"), [("sigint", 130, "interrupted"), ("sigterm", 143, "terminated")]
)
def test_signal_while_saving_leaves_nothing(
    saved: Path, data_csv: Path, tmp_path: Path, mode: str, code: int, says: str
) -> None:
    out = tmp_path / "fit.nc"
    p = _fake_fit(mode, saved, data_csv, out, 0.0)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    assert says in one_line(err)
    assert names(tmp_path) == []


def test_two_fits_to_one_out_exactly_one_wins(
    saved: Path, post: Posterior, data_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fit.nc"
    start = time.time() + 8.0  # both processes imported and loaded by then
    procs = [_fake_fit("race", saved, data_csv, out, start) for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    assert "fit.nc exists" in one_line(loser[2])
    winner = next(r for r in results if r[0] == 0)
    assert f"wrote {out}" in winner[1]
    assert names(tmp_path) == ["fit.nc"]
    loaded = Posterior.load(out)  # whole, and the fit's draws
    np.testing.assert_array_equal(loaded.draws("k"), post.draws("k"))


@pytest.mark.slow
def test_two_real_fits_to_one_out(data_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.nc"
    procs = [
        cli(
            "fit",
            data_csv,
            "--out",
            out,
            *FIT_ARGS,
            "--draws",
            "50",
            "--tune",
            "50",
            "--seed",
            str(s),
        )
        for s in (1, 2)
    ]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    assert sorted(r[0] for r in results) == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    assert "fit.nc exists" in one_line(loser[2])
    assert names(tmp_path) == ["fit.nc"]
    loaded = Posterior.load(out)
    assert np.isfinite(loaded.draws("k")).all() and loaded.draws("k").std() > 0


# ------------------------------------------------------------------- options and inputs
def test_options_and_out_are_checked_before_the_data(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    missing = tmp_path / "no-such-data.csv"  # never read: the options fail first
    out = tmp_path / "x.nc"
    for extra, says in (
        (["--draws", "0"], "draws must be"),
        (["--seed", str(2**64)], "seed must be below 2**64"),
        (["--target-accept", "1.5"], "target_accept must be"),
        (["--sampler", "bogus"], "sampler must be one of"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["fit", str(missing), "--out", str(out), *extra])
        line = one_line(capsys.readouterr().err)
        assert e.value.code == 2 and says in line, line
    if Path("/proc/self").exists():
        with pytest.raises(SystemExit) as e:
            main(["fit", str(missing), "--out", "/proc/x.nc"])
        line = one_line(capsys.readouterr().err)
        assert e.value.code == 2 and "cannot write /proc/x.nc" in line and ".tmp" not in line
    assert names(tmp_path) == []


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"model;task;us_acc;ds_acc\na;t;0.5;0.4\n", "separated by semicolons"),
        (b"model;task;us_acc;ds_acc\na;t;0,5;0,4\n", "separated by semicolons"),
        (b"model\ttask\tus_acc\tds_acc\na\tt\t0.5\t0.4\n", "separated by tabs"),
        (b"model,task,us_acc,ds_acc\nm\xe9,t,0.5,0.4\n", "not UTF-8 text (byte 0xe9 on line 2"),
        ("model,task\n".encode("utf-16"), "UTF-16"),
    ],
    ids=["semicolon", "decimal-comma", "tab", "latin-1", "utf-16"],
)
def test_data_files_say_what_is_wrong(tmp_path: Path, capsys, content: bytes, says: str) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(SystemExit) as e:
        main(["validate", str(bad)])
    line = one_line(capsys.readouterr().err)
    assert e.value.code == 2 and "bad.csv" in line and says in line, line


def test_a_folder_is_not_taken_for_timm_results(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SystemExit) as e:
        main(["validate", str(tmp_path)])
    line = one_line(capsys.readouterr().err)
    assert e.value.code == 2 and "not a timm results folder" in line, line
