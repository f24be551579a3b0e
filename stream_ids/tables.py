"""Per-host window state: the last ``T - 1`` transformed flows of every source host.

The state lives in a changelog-backed Faust table keyed by the host (the raw UTF-8 key bytes of
``flows``). The table uses the producer's partitioner for its changelog (``use_partitioner``):
the ``flows`` producers partition by murmur2 of the same key bytes (Java/aiokafka compatible),
so a host's state is written to the changelog partition with the number of the ``flows``
partition that carries the host. On restart or rebalance the worker that gets ``flows``
partition *p* restores changelog partition *p* and continues every host's sequence there.

Values are raw bytes: the host's history as a C-ordered float32 array ``(k, W)``, ``k <= T - 1``,
oldest first (exact, compact, no JSON round-off). With the split scorer (the shipped CNN-LSTM) a
row is the flow's CNN encoding (``W = E = 64``), so a window costs one encoder pass for the new
flow only, and the value starts with a tag naming the model that made the encodings
(``enc1:<16 hex of the model's sha256>:``): state written by another model (or the older
transformed-flow state, ``W = F``) is not reused, the host starts afresh.

:func:`build_batch_windows` is the pure logic (no Faust): within one batch several flows of one
host see each other in arrival order, after the history from the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Flows without a source host (79-column layout) are keyed by this synthetic host; each is its
# own host (padding plus itself), as offline scoring does with a missing src_ip.
HOSTLESS = "unknown"
HOSTLESS_KEY = HOSTLESS.encode()


def encode_history(history: np.ndarray, tag: bytes = b"") -> bytes:
    return tag + np.ascontiguousarray(history, dtype=np.float32).tobytes()


def decode_history(raw: bytes | None, n_features: int, tag: bytes = b"") -> np.ndarray:
    if not raw or (tag and not raw.startswith(tag)):
        return np.zeros((0, n_features), dtype=np.float32)
    if tag:
        raw = raw[len(tag) :]
    if len(raw) % 4:
        return np.zeros((0, n_features), dtype=np.float32)
    values = np.frombuffer(raw, dtype=np.float32)
    if values.size % n_features:
        # A model with another feature count wrote this state: start the host afresh.
        return np.zeros((0, n_features), dtype=np.float32)
    return values.reshape(-1, n_features)


def build_batch_windows(
    transformed: np.ndarray,
    hosts: Sequence[bytes],
    histories: Mapping[bytes, np.ndarray],
    window: int,
) -> tuple[np.ndarray, np.ndarray, dict[bytes, np.ndarray]]:
    """Windows for a batch of flows in arrival order.

    ``transformed`` is (n, F); ``hosts[i]`` the key of flow *i*; ``histories`` each host's
    earlier flows (k, F), oldest first. Returns ``windows`` (n, T, F) zero-padded at the front,
    ``lengths`` (n,) the number of real flows in each window, and the new history of every host
    in the batch (its last ``T - 1`` flows). The hostless key never keeps history.
    """
    transformed = np.asarray(transformed, dtype=np.float32)
    n, features = transformed.shape
    windows = np.zeros((n, window, features), dtype=np.float32)
    lengths = np.zeros(n, dtype=np.int32)
    updated: dict[bytes, np.ndarray] = {}
    keep = window - 1
    groups: dict[bytes, list[int]] = {}
    for index, host in enumerate(hosts):
        groups.setdefault(host, []).append(index)
    for host, indices in groups.items():
        rows = transformed[indices]
        if host == HOSTLESS_KEY or keep == 0:
            windows[indices, window - 1] = rows
            lengths[indices] = 1
            continue
        history = histories.get(host)
        if history is None:
            history = np.zeros((0, features), dtype=np.float32)
        history = history[len(history) - keep :] if len(history) > keep else history
        sequence = np.concatenate([history, rows]) if len(history) else rows
        offset = len(history)
        for position, index in enumerate(indices):
            end = offset + position + 1
            start = max(0, end - window)
            part = sequence[start:end]
            windows[index, window - len(part) :] = part
            lengths[index] = len(part)
        updated[host] = np.ascontiguousarray(sequence[-keep:])
    return windows, lengths, updated


def host_window_table(app: Any, name: str = "host-windows", partitions: int | None = None) -> Any:
    """The changelog-backed table of per-host histories (raw key bytes -> raw float32 bytes)."""
    return app.Table(
        name,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        use_partitioner=True,
        help="last T-1 flow encodings (or transformed flows) per source host",
    )
