"""Prefect servers: the one `emotrack server` runs, and a temporary one per `emotrack run`.

`emotrack server` is Prefect's own server, on SQLite by default or on PostgreSQL
(--database-url), with its database vacuum service deleting flow runs that ended more than
--retention-days ago (server_environment).

Without PREFECT_API_URL, Prefect would start a temporary server of its own, which outlives a
run killed with SIGKILL (or by the OOM killer) and piles up on a machine that runs nightly,
and which writes into ~/.prefect/prefect.db, a file that only grows. run_server starts the
same server (the command and settings of Prefect's SubprocessASGIServer, prefect 3.8.8) with
Linux's parent-death signal set, so the kernel ends it with the run, on a database of its
own that is deleted with it.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

_DATABASE_PREFIX = "emotrack-prefect-"  # temporary servers' databases: <prefix><pid>-...

# Runs in the child: ask for SIGTERM when the parent dies (PR_SET_PDEATHSIG = 1), make sure
# the parent did not die before that, then become the server (the request survives exec).
_LAUNCH = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


@contextmanager
def run_server(
    cache_dir: Path, preload: Iterable[str] = (), startup_timeout_s: float = 120.0
) -> Iterator[str | None]:
    """The API URL of a new local Prefect server, set as PREFECT_API_URL while the block runs
    and stopped when this process exits; None (and no server) when PREFECT_API_URL already
    names one. An empty database made once is kept in cache_dir (see _template_database).

    The modules named in `preload` (a flow's, with Prefect, Dask and pandas behind it: about
    3 s) are imported while the server starts (8 s, on one core), not before: the server is
    launched before this process imports Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        for module in preload:
            importlib.import_module(module)
        yield None
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    uvicorn = [
        "-m",
        "uvicorn",
        "--app-dir",
        _site_packages(),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    database = None
    if "PREFECT_API_DATABASE_CONNECTION_URL" not in os.environ:
        _remove_stale_databases()
        database = Path(tempfile.mkdtemp(prefix=f"{_DATABASE_PREFIX}{os.getpid()}-"))
        shutil.copyfile(_template_database(cache_dir), database / "prefect.db")
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = _sqlite_url(database / "prefect.db")
    launch = [sys.executable, "-c", _LAUNCH, str(os.getpid()), *uvicorn]
    server = subprocess.Popen(launch, env=env, stdin=subprocess.DEVNULL)
    # Stopped at exit, after Prefect's own exit hooks have sent it their last logs and events
    # (stopping it earlier leaves them retrying forever), as Prefect's temporary server is.
    atexit.register(_stop, server, database)
    for module in preload:
        importlib.import_module(module)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    _wait_healthy(url, server, startup_timeout_s)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url


def server_environment(
    database_url: str | None,
    retention_days: float,
    auth: str | None = None,
    url: str | None = None,
) -> dict[str, str]:
    """The settings of `emotrack server`: its database (None: Prefect's default SQLite file);
    the vacuum service deleting flow runs (with their task runs, logs and artifacts)
    that ended more than retention_days ago (0: never), besides old events; the
    credentials (`user:password`) that the API then asks of every request but its health
    check, and that the UI asks for; and `url`, where browsers reach the server (the UI
    calls its API at url/api: without it, Prefect's UI calls 127.0.0.1:4200, whatever
    the server's own port)."""
    env = {}
    if auth:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth
    if url:
        env["PREFECT_UI_API_URL"] = f"{url.rstrip('/')}/api"
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    if retention_days > 0:
        env["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] = "events,flow_runs"
        env["PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"] = str(int(retention_days * 86400))
    return env


def is_loopback(host: str) -> bool:
    """Whether `host` is an address only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: resolved by the server, maybe to any address
        return False


def public_url(host: str, port: int) -> str:
    """Where browsers reach a server listening on host:port: this machine's name when it
    listens on every address."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _stop(server: subprocess.Popen, database: Path | None) -> None:
    server.terminate()
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    if database is not None:
        shutil.rmtree(database, ignore_errors=True)


def _template_database(cache_dir: Path) -> Path:
    """An empty Prefect database with Prefect's schema, made once per Prefect version in the
    cache (migrating a new database takes a server about 6 s more to start)."""
    template = cache_dir / "prefect" / f"empty-{version('prefect')}.db"
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        building = template.with_name(f".{template.name}.{os.getpid()}.tmp")
        env = {**os.environ, "PREFECT_API_DATABASE_CONNECTION_URL": _sqlite_url(building)}
        prefect_cli = str(Path(sys.executable).with_name("prefect"))
        subprocess.run(
            [prefect_cli, "server", "database", "upgrade", "-y"],
            env=env,
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.replace(building, template)  # whole, or not at all
    return template


def _site_packages() -> str:
    """Where Prefect is installed, found without importing it (that takes 1.6 s)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise RuntimeError("Prefect is not installed")
    return str(Path(spec.origin).parent.parent)


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _remove_stale_databases() -> None:
    """Delete the databases of temporary servers whose run died without cleaning up."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_DATABASE_PREFIX}*"):
        pid = folder.name.removeprefix(_DATABASE_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the Prefect server at {url} did not answer within {timeout_s:.0f} s")
