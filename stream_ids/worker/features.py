"""Step 2 of a batch: the good flows' model inputs (the saved feature transform).

Windows are built later, in the scoring thread, from these rows and the hosts' histories
(:mod:`stream_ids.worker.score`).
"""

from __future__ import annotations

import numpy as np

from stream_ids.schema import FEATURE_NAMES
from stream_ids.wire import FlowColumns
from stream_ids.worker.protocols import FeatureTransform


def model_inputs(transform: FeatureTransform, flows: FlowColumns) -> np.ndarray:
    """(n, model inputs) float32: ``transform`` applied to ``flows``, vectorised.

    Applied on the event loop, not in the scoring thread: numpy releases the GIL for each
    operation on a large array, and a thread that gives the GIL up must then wait for the busy
    event loop to hand it back (up to the 5 ms switch interval) each time; ~15 such operations
    per chunk made the transform cost ~20x its own time in the scoring thread
    (docs/performance.md section 8).
    """
    protocol = np.array(
        [np.nan if value is None else value for value in flows.protocol], dtype=np.float64
    )
    columns = feature_columns(transform)
    values = flows.values if columns is None else flows.values[:, columns]
    return np.asarray(transform.transform_arrays(values, protocol), dtype=np.float32)


def feature_columns(transform: FeatureTransform) -> list[int] | None:
    """Column indices of the transform's features in FEATURE_NAMES (None: the same order)."""
    names = list(transform.feature_names)
    if names == list(FEATURE_NAMES):
        return None
    index = {name: position for position, name in enumerate(FEATURE_NAMES)}
    return [index[name] for name in names]
