"""Safe publishing of output files: a private temporary file, then an atomic publish.

Every writer stages its output in a temporary file of its own in the target folder
(:func:`tempfile.mkstemp`, so two writers never share one), flushes it to disk, and then
publishes it under the final name:

- without ``overwrite``, by a hard link (``os.link``), which fails if the name exists: of
  two writers racing for one name exactly one wins, and the other gets
  :class:`FileExistsError`; nothing is ever clobbered;
- with ``overwrite``, by ``os.replace``: readers see the old file or the new one, never a
  part.

The temporary file is removed on any exception, ``KeyboardInterrupt`` included, so an
interrupted writer leaves no orphan behind and no partial file under the final name.
:func:`signals_as_exceptions` turns ``SIGTERM`` into an exception for the same cleanup.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = [
    "OutputError",
    "Terminated",
    "check_interrupted",
    "check_writable",
    "interrupts_held",
    "publish_file",
    "signals_as_exceptions",
    "staged",
    "write_atomic",
]

#: Marks a staged file: ``.<name>.<random>.part<suffix>`` (hidden, with the final suffix so
#: that writers that infer the format from the name, e.g. ``savefig``, still work).
PART = ".part"


class OutputError(OSError):
    """An output path cannot be written (a file where a folder should be, no permission)."""


class Terminated(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt
    """The process received ``SIGTERM`` (see :func:`signals_as_exceptions`)."""


def _nearest_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written; return it as a Path.

    ``path`` is a file to be written (``folder=False``) or a folder to write files into.
    The nearest existing folder on the way is probed by creating (and removing) a
    temporary file there, which catches read-only file systems and pseudo file systems
    such as ``/proc`` that permission bits do not.

    Raises
    ------
    OutputError
        Naming ``path`` and what is wrong with it.
    """
    path = Path(path)
    if not folder and path.is_dir():
        raise OutputError(f"{path} is a folder; a file name is needed")
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"cannot write into {path}: it is a file, not a folder")
    base = _nearest_existing(path if folder else path.parent)
    if not base.is_dir():
        raise OutputError(f"cannot write {path}: {base} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".scale-transfer-probe-")
    except OSError as err:
        why = os.strerror(err.errno) if err.errno else str(err)
        what = f"cannot write {path}: no file can be created in {base} ({why})"
        raise OutputError(what) from None
    os.close(fd)
    os.unlink(probe)
    return path


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries to disk (best effort: not every system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exists_message(dest: Path) -> str:
    return f"{dest} exists; pass --overwrite (overwrite=True) to replace it"


def publish_file(tmp: str | os.PathLike, dest: str | os.PathLike, *, overwrite: bool) -> Path:
    """Publish the finished file ``tmp`` as ``dest`` atomically; ``tmp`` is gone afterwards.

    Without ``overwrite`` an existing ``dest`` is never replaced, even one that another
    process created a moment ago: :class:`FileExistsError`, and ``tmp`` is left for the
    caller to remove.
    """
    tmp, dest = Path(tmp), Path(dest)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    if overwrite:
        os.replace(tmp, dest)
    else:
        try:
            os.link(tmp, dest)
        except FileExistsError:
            raise FileExistsError(_exists_message(dest)) from None
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                 errno.EMLINK):  # fmt: skip
                raise
            # no hard links on this file system: claim the name, then move the content in
            try:
                fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise FileExistsError(_exists_message(dest)) from None
            os.close(fd)
            os.replace(tmp, dest)
        else:
            os.unlink(tmp)
    _fsync_dir(dest.parent)
    return dest


@contextlib.contextmanager
def staged(dest: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a private temporary path beside ``dest``; publish it there when the block ends.

    Write the output to the yielded path inside the ``with`` block. On a normal exit the
    file is flushed and published as ``dest`` (:func:`publish_file`); on any exception or
    interrupt it is removed and ``dest`` is untouched.

    Examples
    --------
    >>> with staged("table.csv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp, index=False)
    """
    dest = Path(dest)
    if dest.is_dir():
        raise IsADirectoryError(f"{dest} is a folder; a file name is needed")
    if not overwrite and dest.exists():  # early, cheap; publish_file checks again atomically
        raise FileExistsError(_exists_message(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                    suffix=PART + dest.suffix)  # fmt: skip
        tmp = Path(name)
        os.close(fd)
        yield tmp
        check_interrupted()  # a Ctrl-C lost in a C callback: publish nothing
        publish_file(tmp, dest, overwrite=overwrite)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def write_atomic(
    dest: str | os.PathLike, write: Callable[[Path], object], *, overwrite: bool = False
) -> Path:
    """Call ``write(tmp)`` to fill a private temporary file, then publish it as ``dest``.

    See :func:`staged`; returns ``dest`` as a Path.
    """
    with staged(dest, overwrite=overwrite) as tmp:
        write(tmp)
    return Path(dest)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"terminated by signal {signal.Signals(signum).name}")


#: Set by the ``SIGINT`` handler of :func:`signals_as_exceptions`; cleared as a block starts
#: and ends.
_interrupted = threading.Event()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    _interrupted.set()  # remembered: a KeyboardInterrupt raised inside a C callback is lost
    raise KeyboardInterrupt


def check_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C came within :func:`signals_as_exceptions`.

    An exception raised while Python runs a callback for C code (numba's compiler calls
    one while a model is compiled) is printed as "Exception ignored" and lost; the work
    then goes on. The handler remembers the interrupt; sampling (after compiling) and
    publishing a file call this, so that a lost Ctrl-C still stops the work before
    anything is saved.
    """
    if _interrupted.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Within the block, hold a Ctrl-C (``SIGINT``) back; deliver it when the block ends.

    Compiling a model runs numba's compiler (LLVM, C++), which calls back into Python: a
    ``KeyboardInterrupt`` raised in such a callback unwinds through frames that do not
    expect it, and the process can crash (a CLI fit interrupted while it compiled ended by
    a segmentation fault, return code -11, where 130 was due). Within the block the signal is
    only recorded; at its end the handler that was in place before is called with it
    (Python's default raises ``KeyboardInterrupt``), so the interrupt stops the work a
    compilation later (about 20 s) instead of crashing it. An ignored ``SIGINT`` stays ignored;
    outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signal.SIGINT)
    if not callable(old) and old != signal.SIG_DFL:  # ignored, or set from outside Python
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if held:
        if not callable(old):  # SIG_DFL: Python's own handler's way
            raise KeyboardInterrupt
        old(signal.SIGINT, None)


def _quiet_lost_interrupt(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    """Return an unraisable hook that drops the Ctrl-C lost in a C callback, else ``hook``'s.

    Python prints an exception it cannot raise (one raised in a callback from C code) with
    its traceback as "Exception ignored"; for the Ctrl-C of :func:`_raise_interrupt` that is
    noise: :func:`check_interrupted` raises it again where it can be handled.
    """

    def quiet(unraisable: Any) -> object:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _interrupted.is_set():
            return None
        return hook(unraisable)

    return quiet


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Within the block, ``SIGTERM`` raises :class:`Terminated`.

    ``SIGINT`` raises ``KeyboardInterrupt`` as Python's default handler does (unless it is
    ignored), so ``finally`` clauses run and staged files are removed; it is also
    remembered, for :func:`check_interrupted`. Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _interrupted.clear()
    old_term = signal.signal(signal.SIGTERM, _raise_terminated)
    old_int = signal.getsignal(signal.SIGINT)
    # an ignored SIGINT (a background job) stays ignored; a handler of the caller's stays
    ours = old_int in (signal.SIG_DFL, signal.default_int_handler)
    old_hook = sys.unraisablehook
    if ours:
        signal.signal(signal.SIGINT, _raise_interrupt)
        sys.unraisablehook = _quiet_lost_interrupt(old_hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if ours:
            signal.signal(signal.SIGINT, old_int)
            sys.unraisablehook = old_hook
        _interrupted.clear()  # the interrupt has ended the block; it does not outlive it
