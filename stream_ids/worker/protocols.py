"""What the worker needs of its model and its feature transform (the seams, typed).

:class:`stream_ids.scorer.Scorer` and :class:`stream_ids.transform.FlowTransform` are the real
ones; ``tests/unit/streaming_fakes.py`` has small stand-ins that satisfy the same protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from stream_ids.calibration import Calibration


class FeatureTransform(Protocol):
    """The saved feature transform: raw CICFlowMeter features -> model inputs."""

    @property
    def feature_names(self) -> Sequence[str]:
        """The raw features it reads, in the order :meth:`transform_arrays` takes them."""
        ...

    def transform_arrays(self, values: np.ndarray, protocol: np.ndarray) -> np.ndarray:
        """(n, features) float64 values plus (n,) protocol numbers -> (n, inputs) inputs."""
        ...


class ScoringModel(Protocol):
    """A loaded model as the worker scores with it (:class:`stream_ids.scorer.Scorer`).

    ``split`` is set once :meth:`enable_split` succeeded: the host table then holds each flow's
    encoding (``state_width`` wide, tagged ``state_tag``) and scoring runs the head only.
    """

    window: int
    n_inputs: int
    state_width: int
    state_tag: bytes
    threshold: float
    model_version: str
    calibration: Calibration | None  # the site calibration in force (None: the model's own)
    split: Any  # the split network (None: whole windows of model inputs are scored)

    @property
    def transform(self) -> FeatureTransform: ...

    def enable_split(self) -> bool: ...

    def warm_up(self) -> None: ...

    def encode(self, transformed: np.ndarray) -> np.ndarray: ...

    def score_encoded(self, encodings: np.ndarray, lengths: np.ndarray) -> np.ndarray: ...

    def score_windows(self, windows: np.ndarray) -> np.ndarray: ...
