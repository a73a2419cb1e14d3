"""The entry point: expand multi-value options, run the app, turn errors into exit codes."""

from __future__ import annotations

import importlib
import sys

import typer

from scale_transfer.cli.common import app, user_errors

# register the commands: the library's first (the order of --help), then the lab's
for _module in ("library", "lab"):
    importlib.import_module(f"scale_transfer.cli.{_module}")


def expand_multi_values(argv: list[str]) -> list[str]:
    """Let ``--us-acc 0.7 0.8`` mean ``--us-acc 0.7 --us-acc 0.8``.

    ``--us-acc=0.7`` and ``--us-acc 0.7,0.8`` (commas, as ``--methods`` takes) work too.

    Numbers after ``--us-acc``, ``--models-us-acc`` and ``--sizes`` are expanded, and after
    ``--prob`` where it takes several (``validate-extrapolation``; elsewhere a second number
    is left for the command to refuse); so are words after ``--setting``, ``--methods`` and
    ``--targets`` of ``study`` (which takes no positional argument that they could swallow).
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    numbers = {"--us-acc", "--sizes", "--models-us-acc"}
    if command == "validate-extrapolation":
        numbers.add("--prob")
    words = {"--setting", "--methods", "--targets"} if command == "study" else set()
    split: list[str] = []  # "--us-acc=0.9" and "--us-acc 0.9,1.0" as "--us-acc 0.9 1.0"
    in_numbers = False
    for a in argv:
        opt, eq, value = a.partition("=")
        if eq and opt in numbers:
            split += [opt, *comma_numbers(value)]
            in_numbers = True
        elif a.startswith("-") and not is_number(a):
            split.append(a)
            in_numbers = a in numbers
        else:
            split += comma_numbers(a) if in_numbers else [a]
    out: list[str] = []
    current = None
    for a in split:
        if a.startswith("-") and not is_number(a):
            current = a if a in numbers | words else None
            out.append(a)
        elif current is None or out[-1] == current:
            out.append(a)
        elif current in words or is_number(a):
            out += [current, a]
        else:
            current = None
            out.append(a)
    return out


def comma_numbers(s: str) -> list[str]:
    """``"0.9,1.0"`` -> ``["0.9", "1.0"]`` when every part is a number; else ``[s]``."""
    parts = [p.strip() for p in s.split(",")]
    return parts if len(parts) > 1 and all(is_number(p) for p in parts) else [s]


def is_number(s: str) -> bool:
    """Whether ``s`` parses as a float."""
    try:
        float(s)
    except ValueError:
        return False
    return True


def click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Usage-error and abort classes of click and of the copy of click that typer vendors.

    typer >= 0.20 raises its own ``typer._click`` exceptions, which are not click's.
    """
    import click

    usage: list[type] = [click.exceptions.ClickException]
    abort: list[type] = [click.exceptions.Abort, typer.Abort]
    try:
        from typer._click import exceptions as vendored
    except ImportError:  # older typer: click itself
        pass
    else:
        usage.append(vendored.ClickException)
        if hasattr(vendored, "Abort"):
            abort.append(vendored.Abort)
    return tuple(usage), tuple(abort)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``scale-transfer`` command."""
    args = expand_multi_values(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in args
    if not debug:
        import warnings

        def _show(message, category, *_args, **_kwargs):  # noqa: ANN001, ANN002, ANN003
            typer.echo(f"warning: {message}", err=True)

        warnings.showwarning = _show
    from scale_transfer.publish import Terminated, signals_as_exceptions

    try:
        # SIGTERM raises, as Ctrl-C does: staged output files are removed on the way out
        with signals_as_exceptions():
            rc = app(args=args, standalone_mode=False)
        if rc == 130 and not debug:  # typer's return for a KeyboardInterrupt in a command
            _interrupted(130)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except (KeyboardInterrupt, Terminated) as err:
        if debug:
            raise
        _interrupted(130 if isinstance(err, KeyboardInterrupt) else 143)
    except Exception as err:  # noqa: BLE001
        usage, abort = click_errors()
        if isinstance(err, usage):  # bad options: click's usage message, no traceback
            err.show()
            sys.exit(getattr(err, "exit_code", 2) or 2)
        if isinstance(err, abort):  # click's name for Ctrl-C
            _interrupted(130)
        if debug or not isinstance(err, user_errors()):
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


def _interrupted(code: int) -> None:
    """Say in one line that the command was stopped; exit with ``code``."""
    what = "interrupted (Ctrl-C)" if code == 130 else "terminated (SIGTERM)"
    typer.echo(f"error: {what}; no partial output was written", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
