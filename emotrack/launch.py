"""One way to start any flow (`emotrack run`, `rescore`, `train`, `serve`): the same console,
the same Prefect server wiring, the same error policy.

- Console: quiet by default (warnings, errors and emotrack's own lines); Settings.log_level
  DEBUG (`emotrack -v`) shows everything. The Prefect API still receives every INFO line.
  This is the one place where Prefect is configured through its own variables.
- Server: the run's own temporary Prefect server (emotrack.server.run_server), or the one
  PREFECT_API_URL names; never Prefect's own temporary server and its ~/.prefect database.
- Errors: a permanent storage error (emotrack.errors: access denied, a full disk) stops the
  flow; the command then prints one line, what and where, and exits 1. The traceback stays
  in the flow run's log in the Prefect API, not on the console.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emotrack.errors import StorageError
from emotrack.settings import Settings


def configure_prefect(settings: Settings) -> None:
    """Prefect's console level, telemetry and credentials (Settings.api_auth_file), before
    Prefect is imported (it reads them then); the processes this one starts inherit them."""
    if settings.api_auth_file is not None:
        os.environ["PREFECT_API_AUTH_STRING"] = read_auth_file(settings.api_auth_file)
    if settings.verbose:  # everything, whatever this environment said
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "DEBUG"
    else:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # Offline archives are the norm: no telemetry from the server, nor from the client (and no
    # banner about it).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def read_auth_file(path: Path) -> str:
    """The credentials in `path`: its first line, `user:password`. Raises ValueError (naming
    the file, never its content) when it holds none."""
    try:
        line = path.read_text().splitlines()[0].strip() if path.stat().st_size else ""
    except OSError as error:
        raise ValueError(f"{path}: cannot read the credentials ({error.strerror})") from None
    if ":" not in line or line.startswith(":") or line.endswith(":"):
        raise ValueError(f"{path}: the first line must be user:password")
    return line


def run_flow(flow: str, settings: Settings, **parameters: Any) -> tuple[int, Any]:
    """The flow named `flow` ("module:name") called with (**parameters, settings=settings) on
    the run's Prefect server: (0, its result), or (1, None) once a storage error stopped it
    (said on stderr in one line)."""
    from emotrack.cluster import few_arenas

    few_arenas()  # this process commits with delta-rs, DuckDB and Arrow's threads
    try:
        with flow_session(settings, flow) as loaded:
            return 0, loaded(**parameters, settings=settings)
    except StorageError as error:
        print(f"emotrack: the run stopped: {error}", file=sys.stderr)
        return 1, None
    except Exception as error:
        if not unauthorized(error):
            raise
        return 1, None


def unauthorized(error: BaseException) -> bool:
    """Whether `error` is the Prefect server refusing this client's credentials (HTTP 401);
    if so, says so on stderr in one line."""
    response = getattr(error, "response", None)
    if getattr(response, "status_code", None) != 401:
        return False
    print(
        f"emotrack: the Prefect server at {os.environ.get('PREFECT_API_URL')} refused this "
        "client (401): give its credentials in a file, EMOTRACK_API_AUTH_FILE=FILE (first "
        "line user:password, as given to `emotrack server --auth-file`)",
        file=sys.stderr,
    )
    return True


@contextmanager
def flow_session(settings: Settings, flow: str) -> Iterator[Any]:
    """The flow named `flow` ("module:name", imported while the run's server starts), with
    the run's Prefect server (or PREFECT_API_URL's), SIGTERM unwinding the run like Ctrl-C,
    and tracebacks of storage errors kept off the console."""
    configure_prefect(settings)
    signal.signal(signal.SIGTERM, _stop)
    from emotrack.server import run_server

    module, name = flow.split(":")
    with (
        run_server(settings.cache_dir, preload=[module]),
        _console_without_tracebacks(StorageError),
    ):
        yield getattr(sys.modules[module], name)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (a timeout, systemctl stop, an eviction) unwinds the run like Ctrl-C: Prefect
    marks the flow run Crashed, the Dask workers, ffmpeg and the temporary server are ended."""
    raise KeyboardInterrupt(f"stopped by signal {signum}")


class _NoTraceback(logging.Formatter):
    """Formats as `inner` does, without the traceback of the exceptions of `kinds`."""

    def __init__(self, inner: logging.Formatter | None, kinds: tuple[type, ...]) -> None:
        super().__init__()
        self.inner, self.kinds = inner or logging.Formatter(), kinds

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, self.kinds):
            return self.inner.format(record)
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text = saved


@contextmanager
def _console_without_tracebacks(*kinds: type) -> Iterator[None]:
    """Prefect's console handlers print errors of `kinds` without their traceback meanwhile
    (its API handler still sends them whole)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [
        handler
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, PrefectConsoleHandler)
    ]
    saved = [handler.formatter for handler in handlers]
    for handler, formatter in zip(handlers, saved, strict=True):
        handler.setFormatter(_NoTraceback(formatter, kinds))
    try:
        yield
    finally:
        for handler, formatter in zip(handlers, saved, strict=True):
            handler.setFormatter(formatter)
