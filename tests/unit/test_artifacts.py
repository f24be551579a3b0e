"""Poisoned model artifacts are refused at load with an ArtifactError naming the file.

A copy of the shipped model directory is corrupted, truncated or swapped, with the manifest's
sha256 left alone (the hash check catches it) or recomputed (a consistent but wrong manifest:
the deeper checks must catch it). ``stream-ids worker`` on such a directory exits non-zero and
prints the message.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stream_ids.artifacts import MANIFEST_FILE, MODEL_FILE, TRANSFORM_FILE, shipped_model_dir
from stream_ids.errors import ArtifactError
from stream_ids.scorer import Scorer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    target.mkdir()
    for name in (MODEL_FILE, TRANSFORM_FILE, MANIFEST_FILE):
        shutil.copyfile(shipped_model_dir() / name, target / name)
    return target


def _rehash(directory: Path) -> None:
    """Make the manifest agree with the files again (a consistent, wrong manifest)."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    for name in (MODEL_FILE, TRANSFORM_FILE):
        manifest["sha256"][name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


def _refused(directory: Path, name: str, *words: str) -> str:
    with pytest.raises(ArtifactError) as caught:
        Scorer.load(directory)
    message = str(caught.value)
    assert str(directory / name) in message, message
    for word in words:
        assert word in message, message
    return message


def _edit_transform(directory: Path, change) -> None:
    path = directory / TRANSFORM_FILE
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state))


def test_corrupted_model_is_refused_by_hash(model_dir: Path) -> None:
    data = bytearray((model_dir / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_dir / MODEL_FILE).write_bytes(bytes(data))
    _refused(model_dir, MODEL_FILE, "sha256", "does not match")


def test_truncated_model_with_matching_manifest_is_refused(model_dir: Path) -> None:
    path = model_dir / MODEL_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    _rehash(model_dir)
    _refused(model_dir, MODEL_FILE, "cannot be loaded")


def test_swapped_model_of_another_shape_is_refused(model_dir: Path) -> None:
    from model.cnn_lstm import make_model

    make_model((4, 80)).save(model_dir / MODEL_FILE)  # another window length
    _rehash(model_dir)
    _refused(model_dir, MODEL_FILE, "input shape")


def test_model_swapped_for_another_file_is_refused(model_dir: Path) -> None:
    shutil.copyfile(model_dir / TRANSFORM_FILE, model_dir / MODEL_FILE)
    _refused(model_dir, MODEL_FILE, "sha256")
    _rehash(model_dir)
    _refused(model_dir, MODEL_FILE, "cannot be loaded")


def test_transform_with_wrong_hash_is_refused(model_dir: Path) -> None:
    _edit_transform(model_dir, lambda s: s["maximum"].__setitem__(0, s["maximum"][0] * 2))
    _refused(model_dir, TRANSFORM_FILE, "sha256", "does not match")


def test_transform_with_an_extra_feature_is_refused(model_dir: Path) -> None:
    def add(state: dict) -> None:
        state["feature_names"].append("bogus_feature")
        state["minimum"].append(0.0)
        state["maximum"].append(1.0)

    _edit_transform(model_dir, add)
    _rehash(model_dir)
    _refused(model_dir, TRANSFORM_FILE, "bogus_feature")


def test_transform_with_a_missing_feature_is_refused(model_dir: Path) -> None:
    def drop(state: dict) -> None:
        for key in ("feature_names", "minimum", "maximum"):
            del state[key][5]

    _edit_transform(model_dir, drop)
    _rehash(model_dir)
    _refused(model_dir, TRANSFORM_FILE, "differ from the manifest")


def test_transform_with_inconsistent_lengths_or_garbage_is_refused(model_dir: Path) -> None:
    _edit_transform(model_dir, lambda s: s["minimum"].pop())
    _rehash(model_dir)
    _refused(model_dir, TRANSFORM_FILE, "differ in length")
    shutil.copyfile(shipped_model_dir() / TRANSFORM_FILE, model_dir / TRANSFORM_FILE)
    _edit_transform(model_dir, lambda s: s.pop("maximum"))
    _rehash(model_dir)
    _refused(model_dir, TRANSFORM_FILE, "malformed")
    path = model_dir / TRANSFORM_FILE
    path.write_bytes(path.read_bytes()[:100])
    _rehash(model_dir)
    _refused(model_dir, TRANSFORM_FILE, "unreadable")


def test_missing_files_are_named(model_dir: Path) -> None:
    (model_dir / TRANSFORM_FILE).unlink()
    _refused(model_dir, TRANSFORM_FILE, "missing")
    (model_dir / MANIFEST_FILE).unlink()
    _refused(model_dir, MANIFEST_FILE, "missing manifest")


def test_worker_refuses_a_poisoned_model_and_exits_non_zero(model_dir: Path) -> None:
    data = bytearray((model_dir / MODEL_FILE).read_bytes())
    data[100] ^= 0x01
    (model_dir / MODEL_FILE).write_bytes(bytes(data))
    env = dict(os.environ, PYTHONPATH=str(REPO), STREAM_IDS_METRICS_PORT="0",
               STREAM_IDS_BOOTSTRAP_SERVERS="127.0.0.1:9", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "stream_ids.cli", "worker", "--model-dir", str(model_dir)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0
    assert str(model_dir / MODEL_FILE) in result.stderr, result.stderr
    assert "does not match the manifest" in result.stderr
