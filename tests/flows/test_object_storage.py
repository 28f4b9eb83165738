"""Archives and lakes on object storage: the whole flow against a real S3 server (moto_server),
with faults injected by a small proxy in front of it (a 503 on a PUT, an upload that never
ends while the run is killed)."""

from __future__ import annotations

import http.client
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from prefect.settings import PREFECT_API_URL

from emotrack.lake import Lake
from emotrack.schema import PUBLIC
from emotrack.storage import base_name

CLI = Path(sys.executable).with_name("emotrack")


class Proxy:
    """An HTTP proxy to the S3 server that records every request (method, path, status) and
    can answer a PUT whose path matches a pattern with a 503 (`failures`), never answer it
    (`hang`: `hanging` is set once the whole body has arrived), or deny any request to a
    path (`deny`: 403)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.requests: list[tuple[str, str, int]] = []
        self.failures: dict[str, int] = {}  # pattern -> 503s still to give
        self.hang: str | None = None
        self.deny: str | None = None  # any request to a matching path: 403 Access Denied
        self.hanging, self.released = threading.Event(), threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # botocore sends "Expect: 100-continue"

            def log_message(self, *args: object) -> None:
                pass

            def forward(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                key = unquote(self.path)  # botocore sends "video_id%3Dv..."
                if self.command == "PUT" and proxy.hang and re.search(proxy.hang, key):
                    proxy.hanging.set()
                    proxy.released.wait()
                    self.close_connection = True
                    return
                if proxy.deny and re.search(proxy.deny, key):
                    self.answer(403, b"<Error><Code>AccessDenied</Code></Error>", [])
                    return
                for pattern, left in proxy.failures.items():
                    if self.command == "PUT" and left and re.search(pattern, key):
                        proxy.failures[pattern] = left - 1
                        self.answer(503, b"<Error><Code>SlowDown</Code></Error>", [])
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                self.answer(response.status, response.read(), response.getheaders())
                upstream.close()

            def answer(self, status: int, data: bytes, headers: list[tuple[str, str]]) -> None:
                proxy.requests.append((self.command, unquote(self.path), status))
                self.send_response(status)
                skip = {"transfer-encoding", "connection", "date", "server"}
                if self.command != "HEAD":  # a HEAD keeps the object's own length
                    skip.add("content-length")
                    self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    if name.lower() not in skip:
                        self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Proxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def _upload(s3, bucket: str, files: dict[str, bytes]) -> str:
    fs = s3.fs()
    for name, data in files.items():
        fs.pipe_file(f"{bucket}/in/{name}", data)
    return f"s3://{bucket}/in"


def _two_clips(s3, make_clip, tag: str) -> tuple[str, str]:
    """An archive bucket holding two short clips, and the URL of a lake in a new bucket."""
    files = {
        f"clip{i}.mp4": make_clip(1 + i / 5, 5, name=f"s3-{tag}-{i}.mp4").read_bytes()
        for i in range(2)
    }
    return _upload(s3, s3.bucket("archive"), files), f"s3://{s3.bucket('lake')}/lake"


def test_a_mixed_archive_on_s3_into_a_lake_on_s3(
    prefect_server, s3, photo_clip, asset, tmp_path, monkeypatch
) -> None:
    from emotrack.flows.nightly import nightly
    from emotrack.flows.rescore import rescore

    private = tmp_path / "private.ts"  # a local file no input may read
    private.write_bytes(asset("single_face.mp4").read_bytes())
    big = asset("WolfgangLanger_Pexels.mp4").read_bytes()
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.0,\n{private}\n#EXT-X-ENDLIST\n"
    files = {
        "good one.mp4": asset("single_face.mp4").read_bytes(),
        "sub/ünï ;$(x).mp4": photo_clip(asset("happy_face.jpg"), "s3-smile.mp4").read_bytes(),
        "playlist.mp4": playlist.encode(),
        "list.mp4": f"ffconcat version 1.0\nfile {private}\n".encode(),
        "notes.mp4": b"not a video\n",
        "big.mp4": big,
        ".hidden/skipped.mp4": b"hidden: never listed\n",
    }
    assert max(len(files["good one.mp4"]), len(files["sub/ünï ;$(x).mp4"])) < len(big) // 2
    monkeypatch.setenv("EMOTRACK_MAX_STAGED_BYTES", str(len(big) // 2))
    monkeypatch.setenv("EMOTRACK_STAGING_DIR", str(tmp_path / "staging"))
    (tmp_path / "staging").mkdir()
    source = _upload(s3, s3.bucket("archive"), files)
    lake_url = f"s3://{s3.bucket('lake')}/lake"

    counts = nightly(source=source, lake=lake_url)

    assert counts == {"ok": 2, "failed": 4}
    lake = Lake(lake_url)
    failures = lake.read("failures")
    reasons = dict(zip(failures["source_uri"].map(base_name), failures["message"], strict=True))
    assert "refused: an HLS playlist" in reasons["playlist.mp4"]
    assert "refused: a concat list" in reasons["list.mp4"]
    assert "cannot read it as a video" in reasons["notes.mp4"]
    assert "EMOTRACK_MAX_STAGED_BYTES" in reasons["big.mp4"]
    videos = lake.read("videos")
    ok = videos[videos["status"] == "ok"]
    assert sorted(ok["source_uri"]) == [f"{source}/good one.mp4", f"{source}/sub/ünï ;$(x).mp4"]
    assert lake.count("tracks") > 0 and set(lake.video_ids("tracks")) == set(ok["video_id"])
    assert not list((tmp_path / "staging").iterdir()), "staged copies must be deleted"

    # A second run reads no video and writes no table: every file is complete or quarantined.
    with Proxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        again = nightly(source=source, lake=lake_url)
    assert again == {"skipped": 2, "quarantined": 4}
    bucket = urlsplit(source).netloc
    assert not [r for r in proxy.requests if r[0] == "GET" and r[1].startswith(f"/{bucket}/")]
    tables = re.compile(r"/lake/(videos|features|tracks|episodes|summaries|failures)/")
    assert not [r for r in proxy.requests if r[0] == "PUT" and tables.search(r[1])]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)

    # Readers: pyarrow's own S3 client, DuckDB over a pyarrow dataset, `emotrack sql`.
    endpoint = urlsplit(s3.endpoint)
    filesystem = pafs.S3FileSystem(
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
    )
    tracks = ds.dataset(
        f"{lake_url.removeprefix('s3://')}/tracks", filesystem=filesystem, partitioning="hive"
    )
    assert tracks.count_rows() == lake.count("tracks")
    with duckdb.connect() as con:
        con.register("tracks", tracks)
        per_video = con.execute("SELECT count(DISTINCT video_id) FROM tracks").fetchall()
    assert per_video == [(2,)]
    query = "SELECT 'rows=' || count(*) FROM tracks"
    out = subprocess.run(
        [str(CLI), "sql", "--lake", lake_url, query], capture_output=True, text=True, check=True
    ).stdout
    assert f"rows={lake.count('tracks')}" in out
    report = s3.fs().cat_file(f"{lake_url.removeprefix('s3://')}/_report/index.html").decode()
    assert "good one.mp4" in report and "big.mp4" in report

    # Rescoring reads the features from the bucket and replaces the tracks there.
    assert rescore(lake=lake_url, model="temporal-gru-v1") == {"rescored": 2, "without_features": 0}
    assert set(lake.read("tracks")["model_version"]) == {"temporal-gru-v1"}


FIRST_COMMIT = r"/lake/{}/_delta_log/0{{19}}1\.json"  # version 0 created the empty table


def test_a_503_on_a_data_file_and_on_a_commit_is_retried_and_the_run_completes(
    prefect_server, s3, make_clip, monkeypatch
) -> None:
    from emotrack.flows.nightly import nightly

    source, lake_url = _two_clips(s3, make_clip, "503")
    with Proxy(s3.endpoint) as proxy:
        proxy.failures = {  # a data file of `summaries`, and the commit of `videos`
            r"/lake/summaries/part-[^/]+\.parquet": 1,
            FIRST_COMMIT.format("videos"): 1,
        }
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        counts = nightly(source=source, lake=lake_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)

    assert counts == {"ok": 2}
    for pattern in proxy.failures:
        puts = [
            status for m, path, status in proxy.requests if m == "PUT" and re.search(pattern, path)
        ]
        assert puts.count(503) == 1 and puts.count(200) >= 1, (pattern, puts)
    lake = Lake(lake_url)
    assert sorted(lake.read("videos")["status"]) == ["ok", "ok"]
    assert lake.count("features") == len(
        lake.read("features").drop_duplicates(["video_id", "frame_index", "track_id"])
    )


def test_a_run_killed_mid_commit_leaves_no_partial_video_and_the_next_completes(
    prefect_server, s3, make_clip, monkeypatch
) -> None:
    from emotrack.flows.nightly import nightly

    source, lake_url = _two_clips(s3, make_clip, "kill")
    monkeypatch.setenv("EMOTRACK_LOCK_TTL_S", "4")  # the dead run's lock expires soon
    with Proxy(s3.endpoint) as proxy:
        proxy.hang = FIRST_COMMIT.format("videos")  # features, tracks... are committed
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy.url,
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        }
        run = subprocess.Popen(
            [str(CLI), "run", source, "--lake", lake_url],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while not proxy.hanging.wait(0.5):
                assert run.poll() is None and time.monotonic() < deadline, "no commit to stop"
        finally:
            os.killpg(run.pid, signal.SIGKILL)  # the CLI and its Dask workers, mid-commit
            run.wait()

    lake = Lake(lake_url)
    for table in PUBLIC:  # every table reads
        lake.read(table)
    assert lake.read("videos").empty, "no video is complete: its `videos` commit never landed"
    assert lake.count("summaries") == 2  # committed before `videos`: there, owned by no video

    counts = nightly(source=source, lake=lake_url)  # waits for the dead run's lock to expire
    assert counts.get("ok", 0) == 2
    assert sorted(lake.read("videos")["status"]) == ["ok", "ok"]
    assert lake.count("summaries") == 2  # replaced, not added to


def test_access_denied_to_an_object_stops_the_run_at_once_with_a_clear_error(
    prefect_server, s3, make_clip, monkeypatch
) -> None:
    from emotrack.flows.nightly import nightly

    source, lake_url = _two_clips(s3, make_clip, "denied")
    with Proxy(s3.endpoint) as proxy:
        proxy.deny = r"/in/clip0\.mp4"
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        state = nightly(source=source, lake=lake_url, return_state=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)

    assert state.is_failed()
    assert "access denied to s3://" in state.message and "clip0.mp4" in state.message
    denied = [r for r in proxy.requests if r[2] == 403]
    assert len(denied) == 1, "a 403 is not retried"
    failures = Lake(lake_url).read("failures")
    assert failures.empty, "not the file's fault: nothing recorded, the next run tries again"


def test_a_put_that_keeps_failing_is_tried_six_times_in_all_and_stops_the_run(
    prefect_server, s3, make_clip, monkeypatch
) -> None:
    from emotrack.flows.nightly import nightly

    source, lake_url = _two_clips(s3, make_clip, "always")
    data_file = r"/lake/summaries/part-[^/]+\.parquet"
    with Proxy(s3.endpoint) as proxy:
        proxy.failures = {data_file: 10_000}  # every PUT of a summaries data file: 503
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        state = nightly(source=source, lake=lake_url, return_state=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)

    assert state.is_failed() and "kept failing" in state.message, state.message
    tried = [
        path
        for method, path, status in proxy.requests
        if method == "PUT" and status == 503 and re.search(data_file, path)
    ]
    assert 1 <= len(tried) <= 6, tried  # one retry layer: the storage client's
    assert len(set(tried)) == 1, "the same file, never sent again by the flow"
    lake = Lake(lake_url)
    assert lake.read("videos").empty and lake.read("failures").empty  # nothing half-done


ACCESS_KEY = "AKIAFAKEDONOTLEAK0001"
SECRET_KEY = "fakeSecretKey+DoNotLeak/0123456789abcdef"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/emotrack-test-key"


def test_no_secret_reaches_any_output_and_every_object_is_encrypted(
    s3, locked_server, make_clip, tmp_path
) -> None:
    import json

    import boto3
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

    served = locked_server
    auth = str(served.auth)
    clip = make_clip(1.6, 5, name="s3-secrets.mp4").read_bytes()
    archive = _upload(s3, s3.bucket("archive"), {"clip.mp4": clip, "notes.mp4": b"not a video"})
    lake = f"s3://{s3.bucket('lake')}/lake"
    env = served.client_env() | {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "EMOTRACK_S3_SSE": "aws:kms",
        "EMOTRACK_S3_SSE_KMS_KEY_ID": KMS_KEY,
    }
    done = subprocess.run(
        [str(CLI), "-v", "run", archive, "--lake", lake],  # -v: every log line on the console
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = {"console": done.stdout + done.stderr}
    with (
        temporary_settings(updates={PREFECT_API_URL: served.api, PREFECT_API_AUTH_STRING: auth}),
        get_client(sync_client=True) as client,
    ):
        runs = client.read_flow_runs()
        outputs["prefect"] = json.dumps(
            {
                "runs": [r.model_dump(mode="json") for r in runs],
                "logs": [log.message for log in client.read_logs()],
                "artifacts": [a.model_dump(mode="json") for a in client.read_artifacts()],
            }
        )
    mine = [r for r in runs if r.name == f"nightly {archive}"]
    assert [r.state.type.value for r in mine] == ["COMPLETED"]
    assert "notes.mp4" in outputs["prefect"]  # the search reads what was recorded
    fs, bucket = s3.fs(), lake.removeprefix("s3://").split("/")[0]
    objects = fs.find(bucket)
    assert any(key.endswith(".html") for key in objects)
    for key in objects:
        outputs[key] = fs.cat_file(key).decode("latin-1")
    assert any("probe" in text for key, text in outputs.items() if "failures" in key)
    for where, text in outputs.items():
        for secret in (ACCESS_KEY, SECRET_KEY, auth, auth.split(":")[1]):
            assert secret not in text, f"{secret} in {where}"

    # Every object of the lake, from delta-rs and from fsspec alike, was written with SSE-KMS.
    head = boto3.client("s3", endpoint_url=s3.endpoint).head_object
    for key in objects:
        found = head(Bucket=bucket, Key=key.split("/", 1)[1])
        assert (found.get("ServerSideEncryption"), found.get("SSEKMSKeyId")) == (
            "aws:kms",
            KMS_KEY,
        ), key
