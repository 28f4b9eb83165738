"""The object-storage side of emotrack.storage, against a real S3 server (moto_server)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emotrack.storage import ObjectStore, StorageError


def test_the_lock_object_keeps_others_out_and_is_taken_over_once_its_run_died(s3) -> None:
    url = f"s3://{s3.bucket('lock')}/lake"
    first, second = ObjectStore(url), ObjectStore(url)
    with first.lock(ttl_s=2):
        time.sleep(3)  # longer than the TTL: its holder renews it, so it is still held
        with pytest.raises(TimeoutError), second.lock(timeout_s=1, ttl_s=2):
            pass
    assert not first.exists("_lock"), "released when the block ends"
    with second.lock(timeout_s=1):
        pass
    # a run that died holding it: its lock object stays, past its expiry
    dead = {"owner": "host:1:dead", "expires_at": time.time() - 1}
    first.write_bytes("_lock", json.dumps(dead).encode())
    with second.lock(timeout_s=10):
        assert json.loads(second.read_bytes("_lock"))["owner"] != dead["owner"]
    assert not second.exists("_lock")


def test_a_missing_bucket_is_a_clear_error_before_any_work(s3, tmp_path) -> None:
    with pytest.raises(StorageError, match="no such bucket"):
        ObjectStore("s3://no-such-bucket/lake").check()
    cli = Path(sys.executable).with_name("emotrack")
    started = time.monotonic()
    run = subprocess.run(
        [str(cli), "run", "s3://no-such-bucket/in", "--lake", str(tmp_path / "lake")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "no such bucket for s3://no-such-bucket/in" in run.stderr
    assert "Traceback" not in run.stderr
    assert time.monotonic() - started < 60
