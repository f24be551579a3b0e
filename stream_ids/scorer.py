"""Load a model directory (checking its hashes) and score windows or whole frames.

The directory's contract (file names, sha256 manifest, the shipped model's path) is
:mod:`stream_ids.artifacts`; :meth:`Scorer.load` refuses any mismatch with an
:class:`~stream_ids.errors.ArtifactError` naming the file, then checks that the network, the
transform and the manifest agree with each other.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stream_ids.artifacts import (
    MODEL_FILE,
    TRANSFORM_FILE,
    model_dir_or_shipped,
    model_sha256,
    verified_manifest,
)
from stream_ids.calibration import Calibration, applicable
from stream_ids.errors import ArtifactError
from stream_ids.sequences import DEFAULT_HOST_TTL_S, make_windows
from stream_ids.transform import FlowTransform

SPLIT_TOLERANCE = 1e-6
BATCH = 4096
# Batch sizes the worker runs once at start (see Scorer.warm_up): odd, small and large.
WARM_UP_SIZES = (1, 2, 3, 5, 17, 130, 777, 2048)


def limit_model_threads(threads: int) -> None:
    """Cap the threads the Keras backend uses for the model (0: leave the backend's default).

    Must run before the backend is imported (the pools are made once); values already in the
    environment win, so ``TF_NUM_INTRAOP_THREADS`` etc. can still be set by hand.
    """
    if threads <= 0:
        return
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(name, str(threads))
    if threads == 1:  # JAX's XLA CPU client: no Eigen thread pool for the model's ops
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")


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
        # The model's own threshold, and the one in force: a site's calibration beside the
        # model (stream_ids.calibration) replaces it.
        self.model_threshold = float(manifest["threshold"])
        self.threshold = self.model_threshold
        self.calibration: Calibration | None = None
        self.model_version = str(manifest["model_version"])
        self.n_inputs = transform.n_outputs
        # The streaming split (per-flow encoder + sequence head), or None (whole model only).
        self.split: SplitModel | None = None
        self.state_width = self.n_inputs
        self.state_tag = b""

    def enable_split(self) -> bool:
        """Score streams as encoder(new flows) + head(cached encodings); False if not splittable.

        The split model is checked against the whole model on windows with padding before it
        is used; any difference above ``SPLIT_TOLERANCE`` keeps the whole model.
        """
        from stream_ids.quiet import expected_tracing

        split = SplitModel.of(self.model, self.window)
        with expected_tracing():  # the process's first predictions: TF's start-up notices
            agrees = split is not None and split.agrees_with(self.model, self.n_inputs)
        if split is None or not agrees:
            return False
        self.split = split
        self.state_width = split.width
        # Encodings are only valid for the model that made them: the host state carries a tag.
        self.state_tag = b"enc1:" + model_sha256(self.manifest)[:16].encode() + b":"
        return True

    def encode(self, transformed: np.ndarray) -> np.ndarray:
        """(n, F) transformed flows -> (n, E) per-flow encodings (needs :meth:`enable_split`)."""
        if self.split is None:
            raise RuntimeError("call enable_split() first")
        return self.split.encode(transformed)

    def score_encoded(self, encodings: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(n, T, E) windows of encodings, zero-padded at the front, and (n,) real lengths."""
        if self.split is None:
            raise RuntimeError("call enable_split() first")
        return self.split.score(encodings, lengths)

    def warm_up(self, sizes: tuple[int, ...] = WARM_UP_SIZES) -> None:
        """Run the serving path once per batch size in ``sizes`` before traffic arrives.

        Keras' TensorFlow backend traces a new graph for each new batch shape until it
        generalises (``reduce_retracing``), ~0.1-0.3 s each here; a worker that did this on its
        first live batches stalled their verdicts (latency tails, docs/performance.md).
        """
        from stream_ids.quiet import expected_tracing

        with expected_tracing():  # tracing is the point here: no retracing warning
            self._warm_up(sizes)

    def _warm_up(self, sizes: tuple[int, ...]) -> None:
        rng = np.random.default_rng(0)
        for size in sizes:
            flows = rng.random((size, self.n_inputs), dtype=np.float32)
            if self.split is not None:
                encodings = self.encode(flows)
                windows = np.repeat(encodings[:, None, :], self.window, axis=1)
                self.score_encoded(windows, np.full(size, self.window, dtype=np.int32))
            else:
                self.score_windows(np.repeat(flows[:, None, :], self.window, axis=1))

    def apply_calibration(self, calibration: Calibration | None) -> None:
        """Use a site's calibrated threshold (None: back to the model's own)."""
        self.calibration = calibration
        self.threshold = self.model_threshold if calibration is None else calibration.threshold

    @classmethod
    def load(
        cls, model_dir: str | PathLike[str] | None = None, *, calibrated: bool = True
    ) -> Scorer:
        """Load and verify a model directory; with ``calibrated``, apply the site calibration
        beside it (``calibration.json``), refusing one made for another model."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        directory = model_dir_or_shipped(model_dir)
        if not directory.is_dir():
            raise ArtifactError(f"{directory}: model directory not found")
        manifest = verified_manifest(directory)
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

        from stream_ids.quiet import ignore_mask_warning

        ignore_mask_warning()
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
        scorer = cls(network, transform, manifest, directory)
        if calibrated:
            scorer.apply_calibration(applicable(directory, model_sha256(manifest)))
        return scorer

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

    def score_frame(
        self,
        frame: pd.DataFrame,
        chunk_rows: int = 200_000,
        host_ttl_s: float | None = DEFAULT_HOST_TTL_S,
    ) -> np.ndarray:
        """Canonical flows -> float32 (n,) scores, windows built per source host (offline).

        ``host_ttl_s``: a host's window never reaches back over a longer gap of flow time,
        as in the worker (``STREAM_IDS_HOST_TTL_S``; None: no TTL)."""
        if len(frame) == 0:
            return np.zeros(0, dtype=np.float32)
        transformed = self.transform.transform_many(frame)
        hosts = frame.get("src_ip")
        if hosts is None:
            hosts = pd.Series([None] * len(frame))
        stamps = frame.get("timestamp")
        if self.window == 1 or len(frame) <= chunk_rows:
            windows, _ = make_windows(transformed, hosts, stamps, self.window, host_ttl_s)
            return self.score_windows(windows)
        # Large frames: build windows host-ordered, a chunk at a time, with T-1 rows of overlap.
        from stream_ids.sequences import host_codes, window_order

        order = window_order(hosts, stamps)
        codes = host_codes(hosts)[order]
        ordered_stamps = (
            None
            if stamps is None
            else np.asarray(pd.to_numeric(stamps, errors="coerce"), np.float64)[order]
        )
        scores = np.empty(len(frame), dtype=np.float32)
        overlap = self.window - 1
        for start in range(0, len(frame), chunk_rows):
            lo = max(0, start - overlap)
            rows = order[lo : start + chunk_rows]
            # rows are in window order already: stable sorting by these times keeps it
            windows, _ = make_windows(
                transformed[rows],
                codes[lo : start + chunk_rows],
                None if ordered_stamps is None else ordered_stamps[lo : start + chunk_rows],
                self.window,
                host_ttl_s,
            )
            scores[rows[start - lo :]] = self.score_windows(windows[start - lo :])
        return scores


class SplitModel:
    """A loaded CNN-LSTM cut into its per-flow encoder and its sequence head, same layers/weights.

    The whole model computes ``Masking(0.0)`` -> ``TimeDistributed(flow_encoder)`` -> ``LSTM`` ->
    dense layers. Masking's mask (a step is valid iff any feature is non-zero; a transformed flow
    never is all zeros, its protocol one-hot has a 1) travels through ``TimeDistributed`` to the
    LSTM, which skips masked steps (state and output carried over; front padding therefore
    leaves the zero initial state untouched). The encoder's ``Reshape('as_signal')`` warning is
    about the *inner* per-flow model and does not affect that mask. So the head is the LSTM
    called with an explicit boolean mask ``step >= T - length`` followed by the remaining
    layers; padded steps' encodings are never read. Pure Keras functional API.
    """

    def __init__(self, encoder: Any, head: Any, window: int, width: int) -> None:
        self.encoder = encoder
        self.head = head
        self.window = window
        self.width = width
        self.steps = np.arange(window, dtype=np.int32)[None, :]

    @classmethod
    def of(cls, network: Any, window: int) -> SplitModel | None:
        import keras

        try:
            per_flow = network.get_layer("per_flow")
        except ValueError:
            return None
        layers = list(network.layers)
        index = layers.index(per_flow)
        chain = layers[index + 1 :]
        if (
            not isinstance(per_flow, keras.layers.TimeDistributed)
            or not chain
            or not isinstance(chain[0], keras.layers.RNN)
            or not any(isinstance(layer, keras.layers.Masking) for layer in layers[:index])
        ):
            return None
        encoder = per_flow.layer
        width = int(encoder.output.shape[-1])
        encodings = keras.Input(shape=(window, width), name="encodings")
        valid = keras.Input(shape=(window,), dtype="bool", name="valid")
        x = chain[0](encodings, mask=valid)
        for layer in chain[1:]:
            x = layer(x)
        head = keras.Model([encodings, valid], x, name="sequence_head")
        return cls(encoder, head, window, width)

    def encode(self, transformed: np.ndarray) -> np.ndarray:
        transformed = np.asarray(transformed, dtype=np.float32)
        if len(transformed) == 0:
            return np.zeros((0, self.width), dtype=np.float32)
        parts = [
            np.asarray(self.encoder.predict_on_batch(transformed[start : start + BATCH]))
            for start in range(0, len(transformed), BATCH)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def score(self, encodings: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        encodings = np.asarray(encodings, dtype=np.float32)
        if len(encodings) == 0:
            return np.zeros(0, dtype=np.float32)
        valid = self.steps >= (self.window - np.asarray(lengths, dtype=np.int32))[:, None]
        parts = [
            np.asarray(
                self.head.predict_on_batch(
                    [encodings[start : start + BATCH], valid[start : start + BATCH]]
                )
            ).reshape(-1)
            for start in range(0, len(encodings), BATCH)
        ]
        return np.concatenate(parts).astype(np.float32)

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """Whole-model equivalent on (n, T, F) windows of flows (zero rows: padding)."""
        windows = np.asarray(windows, dtype=np.float32)
        n, window, features = windows.shape
        lengths = window - np.argmax(np.any(windows != 0.0, axis=2), axis=1)
        lengths[~np.any(windows != 0.0, axis=(1, 2))] = 0
        encodings = self.encode(windows.reshape(n * window, features)).reshape(n, window, -1)
        return self.score(encodings, lengths)

    def agrees_with(self, network: Any, n_inputs: int, samples: int = 64) -> bool:
        """The split scores equal the whole model's on random windows with every padding length."""
        rng = np.random.default_rng(0)
        windows = rng.random((samples, self.window, n_inputs)).astype(np.float32)
        for row in range(samples):
            windows[row, : row % self.window] = 0.0
        whole = np.asarray(network.predict_on_batch(windows)).reshape(-1)
        return bool(np.max(np.abs(self.score_windows(windows) - whole)) <= SPLIT_TOLERANCE)
