"""Load a model directory (checking its hashes) and score windows or whole frames.

A model directory holds ``model.keras``, ``transform.json`` and ``manifest.json``; the manifest
records the sha256 of the other two, and :meth:`Scorer.load` refuses any mismatch with an
:class:`~stream_ids.errors.ArtifactError` naming the file. The default directory is the shipped
model, ``model/shipped/`` beside the installed :mod:`model` package.
"""

from __future__ import annotations

import hashlib
import json
import os
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stream_ids.errors import ArtifactError
from stream_ids.sequences import make_windows, window_from_history
from stream_ids.transform import FlowTransform

MODEL_FILE = "model.keras"
TRANSFORM_FILE = "transform.json"
MANIFEST_FILE = "manifest.json"
BATCH = 4096


def shipped_model_dir() -> Path:
    """``model/shipped/`` of the installed ``model`` package."""
    import model

    return Path(model.__file__).resolve().parent / "shipped"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing manifest") from None
    except (OSError, ValueError) as error:
        raise ArtifactError(f"{path}: unreadable manifest ({error})") from error
    if not isinstance(manifest, dict) or "sha256" not in manifest or "window" not in manifest:
        raise ArtifactError(f"{path}: not a stream-ids model manifest")
    return manifest


def verify_artifacts(model_dir: Path, manifest: dict[str, Any]) -> None:
    """Raise ArtifactError naming the first file whose sha256 differs from the manifest."""
    for name in (MODEL_FILE, TRANSFORM_FILE):
        path = model_dir / name
        expected = manifest["sha256"].get(name)
        if not path.is_file():
            raise ArtifactError(f"{path}: missing")
        if expected is None:
            raise ArtifactError(f"{model_dir / MANIFEST_FILE}: no sha256 recorded for {name}")
        actual = _sha256(path)
        if actual != expected:
            raise ArtifactError(
                f"{path}: sha256 {actual[:16]}... does not match the manifest "
                f"({expected[:16]}...); "
                "the file is corrupted, tampered with or from another model"
            )


class Scorer:
    """A loaded, verified model: ``window``, ``threshold``, ``model_version``, ``transform``."""

    def __init__(
        self, model: Any, transform: FlowTransform, manifest: dict[str, Any], model_dir: Path
    ) -> None:
        self.model = model
        self.transform = transform
        self.manifest = manifest
        self.model_dir = model_dir
        self.window = int(manifest["window"])
        self.threshold = float(manifest["threshold"])
        self.model_version = str(manifest["model_version"])
        self.n_inputs = transform.n_outputs

    @classmethod
    def load(cls, model_dir: str | PathLike[str] | None = None) -> Scorer:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        directory = Path(model_dir) if model_dir is not None else shipped_model_dir()
        if not directory.is_dir():
            raise ArtifactError(f"{directory}: model directory not found")
        manifest = read_manifest(directory)
        verify_artifacts(directory, manifest)
        transform = FlowTransform.from_json(directory / TRANSFORM_FILE)
        outputs = manifest.get("transform_outputs")
        if outputs is not None and list(transform.output_names) != list(outputs):
            missing = sorted(set(outputs) - set(transform.output_names))
            extra = sorted(set(transform.output_names) - set(outputs))
            raise ArtifactError(
                f"{directory / TRANSFORM_FILE}: features differ from the manifest "
                f"(missing {missing[:5]}, extra {extra[:5]}, or another order)"
            )
        import keras

        import model.cnn_lstm  # noqa: F401  (quiets the harmless mask warning)

        try:
            network = keras.saving.load_model(directory / MODEL_FILE, safe_mode=True, compile=False)
        except Exception as error:  # keras raises many types for a bad file
            raise ArtifactError(f"{directory / MODEL_FILE}: cannot be loaded ({error})") from error
        expected = (int(manifest["window"]), transform.n_outputs)
        if tuple(network.input_shape[1:]) != expected:
            raise ArtifactError(
                f"{directory / MODEL_FILE}: input shape {network.input_shape[1:]} but manifest and "
                f"transform say {expected}"
            )
        return cls(network, transform, manifest, directory)

    # -- scoring -------------------------------------------------------------------------------
    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """(n, T, F) windows -> float32 (n,) attack probabilities (batched predict_on_batch)."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim == 2:
            windows = windows[None]
        if windows.shape[1:] != (self.window, self.n_inputs):
            raise ValueError(
                f"windows of shape {windows.shape[1:]}, expected {(self.window, self.n_inputs)}"
            )
        if len(windows) == 0:
            return np.zeros(0, dtype=np.float32)
        parts = [
            np.asarray(self.model.predict_on_batch(windows[start : start + BATCH])).reshape(-1)
            for start in range(0, len(windows), BATCH)
        ]
        return np.concatenate(parts).astype(np.float32)

    def window_for(self, history: Any, current: np.ndarray) -> np.ndarray:
        """The (T, F) window of a new transformed flow given its host's earlier ones."""
        return window_from_history(history, current, self.window)

    def score_frame(self, frame: pd.DataFrame, chunk_rows: int = 200_000) -> np.ndarray:
        """Canonical flows -> float32 (n,) scores, windows built per source host (offline)."""
        if len(frame) == 0:
            return np.zeros(0, dtype=np.float32)
        transformed = self.transform.transform_many(frame)
        hosts = frame.get("src_ip")
        if hosts is None:
            hosts = pd.Series([None] * len(frame))
        stamps = frame.get("timestamp")
        if self.window == 1 or len(frame) <= chunk_rows:
            windows, _ = make_windows(transformed, hosts, stamps, self.window)
            return self.score_windows(windows)
        # Large frames: build windows host-ordered, a chunk at a time, with T-1 rows of overlap.
        from stream_ids.sequences import host_codes, window_order

        order = window_order(hosts, stamps)
        codes = host_codes(hosts)[order]
        scores = np.empty(len(frame), dtype=np.float32)
        overlap = self.window - 1
        for start in range(0, len(frame), chunk_rows):
            lo = max(0, start - overlap)
            rows = order[lo : start + chunk_rows]
            windows, _ = make_windows(
                transformed[rows], codes[lo : start + chunk_rows], None, self.window
            )
            scores[rows[start - lo :]] = self.score_windows(windows[start - lo :])
        return scores

    def predict_frame(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        scores = self.score_frame(frame)
        return scores, scores >= self.threshold
