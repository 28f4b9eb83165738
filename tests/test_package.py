"""The package as a user installs it: `python -m build` gives a wheel and an sdist; the wheel,
installed into a fresh virtual environment with the lock file as constraints, holds one
top-level package (`emotrack`) and everything its commands read, and `emotrack fetch` and
`emotrack run` work from there, outside the repository."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

import emotrack

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # The test venv's setuptools and build (pinned in the lock): no download of a build env.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> Path:
    """A fresh venv with the wheel pip-installed into it, `-c requirements.lock`.

    Its dependencies are those of the test venv (a .pth file names that venv's site-packages,
    after the fresh venv's own): pip finds them installed at the locked versions and installs
    the wheel alone, instead of downloading 2 GB of TensorFlow and its kin on every run. The
    editable install's import hook is in a .pth file of that folder, which Python reads only
    in its own site folders: the repository's flows/, tasks/ and models/ stay out of sight.
    """
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    (site / "site-packages" / "zz_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    (wheel,) = dist.glob("emotrack-*.whl")
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)]
        + ["-c", str(ROOT / "requirements.lock")],
        check=True,
        capture_output=True,
    )
    return venv


def _in(venv: Path, cwd: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMOTRACK_")}
    clean.pop("PYTHONPATH", None)
    clean |= {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", **env}
    return subprocess.run(
        list(command), cwd=cwd, env=clean, capture_output=True, text=True, timeout=400
    )


def test_build_gives_a_wheel_with_one_top_level_package_and_an_sdist(dist):
    (wheel,) = dist.glob(f"emotrack-{emotrack.__version__}-py3-none-any.whl")
    assert list(dist.glob(f"emotrack-{emotrack.__version__}.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "emotrack",
        f"emotrack-{emotrack.__version__}.dist-info",
    }
    for shipped in [
        "emotrack/flows/nightly.py",
        "emotrack/tasks/commit.py",
        "emotrack/models/expression_cnn.py",
        "emotrack/models/weights/temporal-gru-v1/model.weights.h5",
        "emotrack/models/weights/temporal-gru-v1/MODEL_CARD.md",
        "emotrack/models/cards/au-evidence-v1.md",
        "emotrack/models/cards/au-evidence-v2.md",
        "emotrack/training/talking_head_arc.csv",
    ]:
        assert shipped in names, shipped


def test_the_installed_wheel_fetches_and_runs_outside_the_repository(
    installed, prefect_server, settings, asset, tmp_path
):
    where = tmp_path / "elsewhere"
    (where / "archive").mkdir(parents=True)
    shutil.copyfile(asset("single_face.mp4"), where / "archive" / "single_face.mp4")
    env = {"XDG_CACHE_HOME": str(settings.cache_dir.parent)}

    found = _in(
        installed, where, "python", "-c", "import emotrack.flows.nightly as m; print(m.__file__)"
    )
    assert found.stdout.startswith(str(installed)), found.stdout + found.stderr
    for generic in ["models", "tasks", "flows"]:
        refused = _in(installed, where, "python", "-c", f"import {generic}")
        assert refused.returncode == 1 and "ModuleNotFoundError" in refused.stderr, generic

    checked = _in(installed, where, "pip", "check")  # every requirement of the wheel is met
    assert checked.returncode == 0, checked.stdout + checked.stderr

    version = _in(installed, where, "emotrack", "--version")
    assert version.stdout.strip() == f"emotrack {emotrack.__version__}"

    fetched = _in(installed, where, "emotrack", "fetch", **env)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert "SHA-256" in fetched.stdout

    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    for model, lake in [(None, "lake-default"), ("temporal-gru-v1", "lake-gru")]:
        command = ["emotrack", "run", "archive", "--lake", lake]
        done = _in(installed, where, *command, *(["--model", model] if model else []), **env)
        said = done.stdout + done.stderr
        assert done.returncode == 0, said
        assert re.search(r"^processed 1 video\(s\), 0 unreadable", said, re.M), said
        assert (where / lake / "tracks" / "_delta_log").is_dir()
