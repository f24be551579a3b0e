"""Per-host windows: the example for a flow is the last ``T`` flows of its source host.

Convention (shared by training, offline scoring and the streaming worker):

* Flows are grouped by source host (``src_ip``) and ordered by ``timestamp``; ties (and missing
  timestamps, which sort last) keep the original row order (stable).
* The window of flow *i* holds, in time order, the ``T - 1`` flows of the same host that precede
  *i* followed by *i* itself in the last slot: ``window[T - 1]`` is always the flow being scored,
  and the example's label is that flow's label.
* A host with fewer than ``T - 1`` earlier flows is **zero-padded at the front**: slots
  ``0 .. T - 1 - k - 1`` are all-zero vectors and ``mask`` is False there. A transformed flow is
  never all zeros (its protocol one-hot has one 1), so the model masks padding with
  ``keras.layers.Masking(mask_value=0.0)``.
* A flow without a host (missing ``src_ip``, e.g. the 79-column layout) is its own host: its
  window is padding plus itself.
* ``T = 1`` is the per-flow model.
* With a host TTL (``ttl``; the worker's ``STREAM_IDS_HOST_TTL_S``, default
  :data:`DEFAULT_HOST_TTL_S`), a gap of more than ``ttl`` seconds of flow time between two
  consecutive flows of a host ends its window: the later flow starts afresh, as a new host. The
  worker drops an idle host's state by the same rule (docs/reliability.md), so streaming scores
  still equal offline ones. Training windows use no TTL.

The streaming worker keeps, per host, the last ``T - 1`` transformed flows in arrival order and
calls :func:`window_from_history`; replaying flows in timestamp order gives the same windows as
:func:`make_windows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# Seconds of flow time a host may stay silent and keep its window (docs/reliability.md: a
# window that reaches back further is meaningless for the model, and an idle host's state is
# dropped after this long).
DEFAULT_HOST_TTL_S = 600.0


def host_codes(hosts: Any) -> np.ndarray:
    """Integer code per host; every missing host gets a code of its own."""
    codes, uniques = pd.factorize(pd.Series(hosts, dtype="object"), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    missing = np.flatnonzero(codes < 0)
    codes[missing] = len(uniques) + np.arange(len(missing))
    return codes


def window_order(hosts: Any, timestamps: Any) -> np.ndarray:
    """Row indices sorted by (host, timestamp, original position)."""
    codes = host_codes(hosts)
    n = len(codes)
    stamps = (
        np.full(n, np.nan)
        if timestamps is None
        else np.asarray(pd.to_numeric(pd.Series(timestamps), errors="coerce"), dtype=np.float64)
    )
    return np.lexsort((np.arange(n), stamps, codes))


def make_windows(
    transformed: np.ndarray,
    hosts: Any,
    timestamps: Any,
    window: int,
    ttl: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(n, F) flows -> windows float32 (n, T, F) and mask bool (n, T), in input order.

    With ``ttl``, a host's window starts after its last gap of more than ``ttl`` seconds
    between consecutive flows (timestamps needed; a missing one never makes a gap)."""
    if window < 1:
        raise ValueError("window must be >= 1")
    values = np.asarray(transformed, dtype=np.float32)
    n, features = values.shape
    windows = np.zeros((n, window, features), dtype=np.float32)
    mask = np.zeros((n, window), dtype=bool)
    if n == 0:
        return windows, mask
    if window == 1:
        windows[:, 0, :] = values
        mask[:, 0] = True
        return windows, mask
    order = window_order(hosts, timestamps)
    sorted_codes = host_codes(hosts)[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    if ttl is not None and timestamps is not None:
        stamps = np.asarray(pd.to_numeric(pd.Series(timestamps), errors="coerce"), np.float64)
        with np.errstate(invalid="ignore"):
            gaps = np.flatnonzero(np.diff(stamps[order]) > ttl) + 1
        starts = np.union1d(starts, gaps)
    group_start = np.zeros(n, dtype=np.int64)
    group_start[starts] = starts
    group_start = np.maximum.accumulate(group_start)
    position = np.arange(n) - group_start  # how many earlier flows of the same host
    sorted_values = values[order]
    for lag in range(window):
        valid = position >= lag
        rows = np.flatnonzero(valid)
        windows[order[rows], window - 1 - lag, :] = sorted_values[rows - lag]
        mask[order[rows], window - 1 - lag] = True
    return windows, mask


def window_from_history(
    history: Sequence[np.ndarray] | np.ndarray, current: np.ndarray, window: int
) -> np.ndarray:
    """One (T, F) window from a host's earlier transformed flows (oldest first) and the new flow.

    Only the last ``T - 1`` entries of ``history`` are used; missing slots are zero padding at
    the front, exactly as :func:`make_windows` builds them.
    """
    current = np.asarray(current, dtype=np.float32)
    out = np.zeros((window, current.shape[-1]), dtype=np.float32)
    out[-1] = current
    if window > 1 and len(history):
        recent = np.asarray(history[-(window - 1) :], dtype=np.float32)
        out[window - 1 - len(recent) : window - 1] = recent
    return out
