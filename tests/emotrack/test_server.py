"""`emotrack server` on PostgreSQL (Debian's, started here with initdb and pg_ctl), with the
retention of old flow runs, and the temporary server of `emotrack run`."""

import asyncio
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("emotrack")


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _postgres_bin() -> Path:
    """Debian's PostgreSQL binaries, installed if missing (when root)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "ensure-debian.sh"), "postgresql", "pg_ctlcluster"],
            capture_output=True,
            text=True,
        )
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            pytest.skip(f"PostgreSQL could not be installed: {done.stderr.strip()}")
    return Path(found[-1]).parent


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of its own on 127.0.0.1; yields its URL for SQLAlchemy."""
    bindir, port = _postgres_bin(), _port()
    folder = Path(tempfile.mkdtemp(prefix="emotrack-postgres-"))  # outside pytest's 0700 tree
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:  # initdb refuses to run as root
        shutil.chown(folder, "postgres")
    run = {"check": True, "capture_output": True}
    subprocess.run(
        [*as_owner, bindir / "initdb", "-D", folder / "data", "-A", "trust", "-U", "postgres"],
        **run,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    pg_ctl = [*as_owner, bindir / "pg_ctl", "-D", folder / "data", "-w"]
    subprocess.run([*pg_ctl, "-o", options, "-l", folder / "log", "start"], **run)
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _sql(url: str, query: str) -> list:
    import asyncpg

    async def run() -> list:
        con = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            return list(await con.fetch(query))
        finally:
            await con.close()

    return asyncio.run(run())


def test_the_server_keeps_its_runs_in_postgresql_and_deletes_old_ones(
    postgres, emotrack_server, tmp_path
) -> None:
    served = emotrack_server(
        None,
        "--database-url",
        postgres,
        "--retention-days",
        "1",
        PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS="1",
    )
    _run_empty(served, tmp_path)
    runs = _sql(postgres, "SELECT name, state_type FROM flow_run")
    assert [(r["name"], r["state_type"]) for r in runs] == [
        (f"nightly {tmp_path / 'archive'}", "COMPLETED")
    ]
    _sql(postgres, "UPDATE flow_run SET end_time = now() - interval '2 days'")
    deadline = time.monotonic() + 60  # the vacuum service deletes runs over 1 day old
    while _sql(postgres, "SELECT id FROM flow_run"):
        assert time.monotonic() < deadline, "the old run was not deleted"
        time.sleep(0.5)
    assert _sql(postgres, "SELECT id FROM task_run") == []


def _run_empty(served, tmp_path: Path) -> None:
    """`emotrack run` of an empty archive, as a client of `served`."""
    (tmp_path / "archive").mkdir()
    subprocess.run(
        [str(CLI), "run", str(tmp_path / "archive"), "--lake", str(tmp_path / "lake")],
        env=served.client_env(),
        check=True,
        capture_output=True,
    )


def test_a_run_without_a_server_leaves_no_database_behind(tmp_path) -> None:
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(home), "TMPDIR": str(tmp_path)}
    (tmp_path / "archive").mkdir()
    subprocess.run(
        [str(CLI), "run", str(tmp_path / "archive"), "--lake", str(tmp_path / "lake")],
        env=env,
        check=True,
        capture_output=True,
    )
    assert not list(home.rglob("*.db")), "the temporary server used the user's database"
    assert not list(tmp_path.glob("emotrack-prefect-*")), "its own database was not deleted"


def test_a_server_open_to_the_network_needs_credentials(tmp_path) -> None:
    refused = subprocess.run(
        [str(CLI), "server", "--host", "0.0.0.0", "--port", str(_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "without --auth-file" in refused.stderr and "Traceback" not in refused.stderr
    (tmp_path / "empty").write_text("")
    empty = subprocess.run(
        [str(CLI), "server", "--auth-file", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 2 and "user:password" in empty.stderr


def _api(served, path: str, auth: str | None) -> int:
    """The HTTP status of a POST to the server's API, with basic credentials `auth`."""
    import urllib.error

    request = urllib.request.Request(
        f"{served.api}/{path}", data=b"{}", headers={"Content-Type": "application/json"}
    )
    if auth is not None:
        request.add_header("Authorization", _basic(auth))
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_server_with_credentials_serves_only_clients_that_have_them(
    locked_server, asset, tmp_path
) -> None:
    served = locked_server
    assert _api(served, "flow_runs/filter", None) == 401
    assert _api(served, "flow_runs/filter", "ops:wrong") == 401
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(asset("single_face.mp4"), archive / "single_face.mp4")

    refused = subprocess.run(
        [str(CLI), "run", str(archive), "--lake", str(tmp_path / "refused")],
        env=served.client_env(with_auth=False),
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "refused this client (401)" in refused.stderr
    assert "Traceback" not in refused.stderr

    done = subprocess.run(
        [str(CLI), "run", str(archive), "--lake", str(tmp_path / "lake")],
        env=served.client_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    request = urllib.request.Request(
        f"{served.api}/flow_runs/filter",
        data=b"{}",
        headers={"Content-Type": "application/json", "Authorization": _basic(str(served.auth))},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        runs = json.loads(answer.read())
    mine = [r["state_type"] for r in runs if r["name"] == f"nightly {archive}"]
    assert mine == ["COMPLETED"]  # the refused run left nothing


def _basic(auth: str) -> str:
    import base64

    return "Basic " + base64.b64encode(auth.encode()).decode()


def test_the_ui_calls_its_own_server_on_any_port_and_lists_its_runs(
    emotrack_server, tmp_path
) -> None:
    served = emotrack_server()
    base = served.api.removesuffix("/api")
    assert not base.endswith(":4200")
    with urllib.request.urlopen(f"{base}/ui-settings", timeout=10) as answer:
        assert json.loads(answer.read())["api_url"] == served.api
    _run_empty(served, tmp_path)
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("no chromium")
    page = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,1000",
            "--virtual-time-budget=60000",
            "--dump-dom",
            f"{base}/runs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert f"nightly {tmp_path / 'archive'}" in page
    assert "Can't connect" not in page


def test_a_database_password_is_never_printed(tmp_path) -> None:
    secret = "FakeDbPassword-DoNotLeak-7"
    url = f"postgresql+asyncpg://emotrack:{secret}@127.0.0.1:{_port()}/prefect"  # nobody there
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    failed = subprocess.run(
        [str(CLI), "-v", "server", "--port", str(_port()), "--database-url", url],
        env=env | {"PREFECT_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode != 0  # no database: the server does not start
    assert "startup failed" in failed.stdout + failed.stderr
    assert secret not in failed.stdout + failed.stderr
