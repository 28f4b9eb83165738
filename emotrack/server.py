"""A Prefect server for one `emotrack run` that ends with it, even when the run is killed.

Without PREFECT_API_URL, Prefect would start a temporary server of its own, which outlives a
run killed with SIGKILL (or by the OOM killer) and piles up on a machine that runs nightly.
This starts the same server (the command and settings of Prefect's SubprocessASGIServer,
prefect 3.8.8) with Linux's parent-death signal set, so the kernel ends it with the run.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Runs in the child: ask for SIGTERM when the parent dies (PR_SET_PDEATHSIG = 1), make sure
# the parent did not die before that, then become the server (the request survives exec).
_LAUNCH = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


@contextmanager
def run_server(startup_timeout_s: float = 120.0) -> Iterator[str | None]:
    """The API URL of a new local Prefect server, set as PREFECT_API_URL while the block runs
    and stopped when this process exits; None (and no server) when PREFECT_API_URL already
    names one."""
    if os.environ.get("PREFECT_API_URL"):
        yield None
        return
    import prefect
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    uvicorn = [
        "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent), "--factory",
        "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "error", "--lifespan", "on",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    launch = [sys.executable, "-c", _LAUNCH, str(os.getpid()), *uvicorn]
    server = subprocess.Popen(launch, env=env, stdin=subprocess.DEVNULL)
    # Stopped at exit, after Prefect's own exit hooks have sent it their last logs and events
    # (stopping it earlier leaves them retrying forever), as Prefect's temporary server is.
    atexit.register(_stop, server)
    _wait_healthy(url, server, startup_timeout_s)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


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
