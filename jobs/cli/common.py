"""What every ``ktrec`` command shares: the ``--json`` option and the summary printer (``emit``), the one
command-line date/time parser (``parse_time``), a stderr spinner, and the one error-mapping path
(``known_errors``): a decorator that turns a *known* error (bad input, a missing lake table, a failed
gate or download) into a single red message on stderr and an exit code, never a traceback, while any other
exception propagates as the bug it is. Nothing heavy is imported here, so ``ktrec --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

import typer

JsonOpt = typer.Option(False, "--json", help="Print one JSON summary line last.")

# Errors a command reports in one line instead of a traceback. The project's own classes are named by module
# and only looked up once that module is loaded (an exception of a class never imported cannot be raised),
# so mapping them costs no import. MissingColumnsError and ScenarioError are ValueErrors; listed for the reader.
KNOWN_BUILTIN: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError)
KNOWN_PROJECT: dict[str, str] = {
    "jobs.ingest.text": "MissingColumnsError",
    "jobs.ingest.datasets": "DownloadError",
    "jobs.validate.gx": "ValidationFailed",
    "models.scenario": "ScenarioError",
    "jobs.train.distributed": "DistributedTrainingError",
}

Command = TypeVar("Command", bound=Callable[..., Any])


def emit(summary: dict[str, Any], as_json: bool) -> None:
    """Print a job summary: a readable table, or one JSON line (always the last line printed)."""
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str, sort_keys=True) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        shown = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
        table.add_row(f"[bold]{key}[/bold]", shown)
    Console().print(table)


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` in red on stderr and exit with ``code``."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def parse_time(value: str, option: str, *, day: bool = False) -> datetime:
    """An ISO-8601 time from the command line as an aware UTC datetime (naive = UTC, aware = converted).

    With ``day`` only a calendar date (YYYY-MM-DD) is accepted, returned as its UTC midnight (``.date()``
    gives the day back). Anything else is a usage error (exit code 2) naming the option.
    """
    from jobs.core.lake import as_utc

    try:
        if day:
            return datetime.combine(date.fromisoformat(value), time(), UTC)
        return as_utc(datetime.fromisoformat(value))
    except ValueError as err:
        wanted = "a date YYYY-MM-DD (e.g. 1998-04-22)" if day else \
            "an ISO-8601 time (e.g. 1998-04-22T00:00:00 or 1998-04-22)"
        raise typer.BadParameter(f"{value!r} is not {wanted}", param_hint=option) from err


def utcnow() -> datetime:
    return datetime.now(UTC)


@contextmanager
def spinner(text: str) -> Iterator[None]:
    """A spinner on stderr while a Spark job runs (silent when stderr is not a terminal)."""
    from rich.console import Console

    with Console(stderr=True).status(text, spinner="dots"):
        yield


def known_error_types() -> tuple[type[BaseException], ...]:
    """The builtin known errors plus the project's error classes whose modules are loaded."""
    loaded = tuple(getattr(sys.modules[module], name) for module, name in KNOWN_PROJECT.items()
                   if module in sys.modules)
    return KNOWN_BUILTIN + loaded


def message_of(exc: BaseException) -> str:
    """The error's own words (a KeyError's str() would add quotes)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or exc.__class__.__name__


def known_errors(*extra: type[BaseException], code: int = 2) -> Callable[[Command], Command]:
    """Decorate a command so known errors (plus ``extra``) exit ``code`` with one red message on stderr.

    With ``--json`` the command's last stdout line is still one JSON object: ``{"success": false, "error":
    ..., "failures": [...]}`` (failures are listed by errors that carry them: a failed validation gate).
    """

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except Exception as exc:
                if not isinstance(exc, known_error_types() + extra):
                    raise
                if kwargs.get("as_json"):
                    failures = [vars(f) for f in getattr(exc, "failures", [])]
                    emit({"success": False, "error": message_of(exc), "failures": failures}, True)
                fail(message_of(exc), code)

        return wrapper  # type: ignore[return-value]

    return decorate
