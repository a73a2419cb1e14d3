"""Running the lab's fits: executors, child processes, and what every fit records.

A study runs many independent fit jobs. :func:`make_runner` picks where they run: in this
process (``workers=0``, for debugging), in local worker processes (spawn context, reused
across jobs) or on a Dask distributed cluster (``scheduler=`` its address or client). The
benchmark runs each fit in a fresh child process instead (:func:`run_in_child`), so that
its memory and compile cache are its own. Every fit, whichever lab module runs it, is made
by :func:`fit_quietly` and reports its convergence through :func:`diagnostics_record`.

Dask, distributed and psutil are optional: ``pip install 'scale-transfer[studies]'``.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

__all__ = [
    "CONVERGENCE_FIELDS",
    "DIAGNOSTIC_FIELDS",
    "DaskRunner",
    "LocalRunner",
    "SerialRunner",
    "diagnostics_record",
    "fit_quietly",
    "make_runner",
    "optional_import",
    "run_in_child",
    "write_atomic_csv",
]

#: Convergence fields of a :class:`scale_transfer.sampling.Diagnostics` that lab records keep.
CONVERGENCE_FIELDS = (
    "draws",
    "chains",
    "min_ess_bulk",
    "min_ess_tail",
    "max_rhat",
    "divergences",
    "max_depth_hits",
    "failed",
)
#: The same and the fit's compile and sampling times.
DIAGNOSTIC_FIELDS = (*CONVERGENCE_FIELDS, "compile_seconds", "compile_cached", "sample_seconds")


def optional_import(name: str, purpose: str) -> ModuleType:
    """Import an optional dependency of the lab, or say how to install it.

    Raises
    ------
    ImportError
        Naming ``purpose`` and the ``studies`` extra.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"{purpose} needs {name}: pip install 'scale-transfer[studies]'") from err


def fit_quietly(data: pd.DataFrame, **kwargs: Any) -> Any:
    """Return :func:`scale_transfer.posterior.fit` of ``data``, convergence recorded, not warned.

    Lab tables keep each fit's diagnostics (:func:`diagnostics_record`) instead of printing a
    warning per fit.
    """
    from scale_transfer.posterior import fit
    from scale_transfer.sampling import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(data, **kwargs)


def diagnostics_record(d: Any, fields: Sequence[str] = DIAGNOSTIC_FIELDS) -> dict[str, Any]:
    """Return a fit's diagnostics as record fields, and ``converged`` (every check passed).

    ``d`` is a :class:`scale_transfer.sampling.Diagnostics`; ``fields`` names the attributes
    kept (those it lacks are left out; ``failed`` lists the checks that failed).
    """
    rec = {f: list(d.failed) if f == "failed" else getattr(d, f) for f in fields if hasattr(d, f)}
    return rec | {"converged": d.ok}


def write_atomic_csv(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` through a temporary file, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Executors: submit(fn, arg) -> future, wait_one(futures) -> finished ones, close(abort).


class SerialRunner:
    """Runs jobs in this process, one at a time (``workers=0``; for debugging)."""

    name = "serial"

    def __init__(self) -> None:
        self.n_slots = 1

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        """Run ``fn(arg)`` now; its result or error is handed back through a future."""
        fut: Future = Future()
        try:
            fut.set_result(fn(arg))
        except Exception as err:  # noqa: BLE001 - handed back through the future
            fut.set_exception(err)
        return fut

    def wait_one(self, futures: set) -> set:
        """Return the finished futures (all of them: they finished when submitted)."""
        return set(futures)

    def close(self, abort: bool = False) -> None:
        """Nothing to stop."""


class LocalRunner:
    """Local worker processes (spawn context); processes are reused across jobs."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        self.n_slots = workers

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        """Queue ``fn(arg)`` on the pool."""
        return self.pool.submit(fn, arg)

    def wait_one(self, futures: set) -> set:
        """Wait for at least one future; return those finished."""
        return wait(futures, return_when=FIRST_COMPLETED).done

    def close(self, abort: bool = False) -> None:
        """Shut the pool down; ``abort`` (an interruption) stops the running jobs too."""
        if abort:  # leave no worker behind
            for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskRunner:
    """A Dask distributed cluster, through :class:`distributed.Client`."""

    name = "dask"

    def __init__(self, scheduler: Any) -> None:
        distributed = optional_import("distributed", "running on a Dask cluster")
        self.own = not isinstance(scheduler, distributed.Client)
        self.client = distributed.Client(scheduler) if self.own else scheduler
        threads = self.client.nthreads()
        self.n_slots = max(1, sum(threads.values()))
        self._wait = distributed.wait

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        """Send ``fn(arg)`` to the cluster."""
        return self.client.submit(fn, arg, pure=False)

    def wait_one(self, futures: set) -> set:
        """Wait for at least one future; return those finished."""
        return set(self._wait(list(futures), return_when="FIRST_COMPLETED").done)

    def close(self, abort: bool = False) -> None:
        """Close the client if this runner opened it."""
        if self.own:
            self.client.close()


def make_runner(scheduler: Any = None, workers: int | None = None) -> Any:
    """Return a Dask runner for ``scheduler``, else a serial (``workers=0``) or local one."""
    if scheduler is not None:
        return DaskRunner(scheduler)
    if workers == 0:
        return SerialRunner()
    return LocalRunner(workers or os.cpu_count() or 1)


def run_in_child(fn: Callable[[Any], Any], arg: Any) -> Any:
    """Return ``fn(arg)`` computed in a fresh ``spawn`` child process of its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, arg).result()
