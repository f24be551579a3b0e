"""The feature transform: one code path from canonical flows to model inputs (train and serve).

Learned state is plain numbers (per-feature minimum and maximum) saved as canonical JSON; the
transform has no side effects and is deterministic.

Per flow the output is ``float32`` of length ``len(feature_names) + 4``:

1. the features in the fixed order :data:`stream_ids.schema.FEATURE_NAMES`, each
   * **Infinity/NaN rule** (CICFlowMeter writes them in the rate features for zero-duration
     flows): NaN -> 0; +Infinity -> the fitted maximum (1.0 after scaling); -Infinity -> the
     fitted minimum (0.0). Applied to every feature, so a stray non-finite value anywhere is safe.
   * optional signed ``log1p`` (``sign(x) * log1p(|x|)``) for the heavy-tailed counts, sizes,
     times and rates (chosen by measurement, see docs/results.md);
   * min-max scaled with the minimum/maximum fitted on the *training split only* (finite values
     only), then clipped to [0, 1] so unseen extremes at serve time stay in range; a constant
     feature maps to 0.
2. protocol one-hot over ``("tcp", "udp", "other", "unknown")``: 6 -> tcp, 17 -> udp, any other
   IP protocol number (0-255) -> other, missing (None/NaN, e.g. the 79-column MachineLearningCVE
   layout) or not an IP protocol number -> unknown (the Python ``cicflowmeter`` writes the
   EtherType, 2048 = 0x0800, for flows of Linux cooked captures: the transport is unknown).
   Because exactly one slot is 1, a transformed flow is never all zeros: the all-zero vector is
   reserved for window padding (see :mod:`stream_ids.sequences`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stream_ids import schema
from stream_ids.errors import ArtifactError, SchemaError

PROTOCOL_SLOTS: tuple[str, ...] = ("tcp", "udp", "other", "unknown")
FORMAT = "stream-ids-flow-transform"
FORMAT_VERSION = 1
NONFINITE_RULE = "nan->0; +inf->fitted max; -inf->fitted min; then min-max and clip to [0,1]"


def _signed_log1p(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.sign(values) * np.log1p(np.abs(values))


def protocol_one_hot(protocol: np.ndarray) -> np.ndarray:
    """(n,) protocol numbers (NaN for missing) -> (n, 4) float32 one-hot over PROTOCOL_SLOTS."""
    protocol = np.asarray(protocol, dtype=np.float64)
    out = np.zeros((len(protocol), len(PROTOCOL_SLOTS)), dtype=np.float32)
    # NaN compares False, so NaN lands in unknown too
    unknown = ~((protocol >= 0) & (protocol <= 255) & (protocol == np.round(protocol)))
    tcp = protocol == 6
    udp = protocol == 17
    out[tcp, 0] = 1.0
    out[udp, 1] = 1.0
    out[~(tcp | udp | unknown), 2] = 1.0
    out[unknown, 3] = 1.0
    return out


def _as_float(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class FlowTransform:
    """Min-max (optionally after signed log1p) scaling of the features plus protocol one-hot."""

    def __init__(
        self,
        feature_names: Sequence[str] = schema.FEATURE_NAMES,
        *,
        log1p: bool = True,
        minimum: Sequence[float] | None = None,
        maximum: Sequence[float] | None = None,
    ) -> None:
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.log1p = bool(log1p)
        self.minimum = None if minimum is None else np.asarray(minimum, dtype=np.float64)
        self.maximum = None if maximum is None else np.asarray(maximum, dtype=np.float64)
        self._getter = itemgetter(*self.feature_names)

    # -- shape -------------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_outputs(self) -> int:
        return len(self.feature_names) + len(PROTOCOL_SLOTS)

    @property
    def output_names(self) -> tuple[str, ...]:
        return (*self.feature_names, *(f"protocol_{slot}" for slot in PROTOCOL_SLOTS))

    @property
    def is_fitted(self) -> bool:
        return self.minimum is not None and self.maximum is not None

    # -- extraction ----------------------------------------------------------------------------
    def _raw(self, records: Any) -> tuple[np.ndarray, np.ndarray]:
        """(n, F) float64 raw features and (n,) float64 protocol (NaN = unknown)."""
        if isinstance(records, pd.DataFrame):
            missing = [name for name in self.feature_names if name not in records.columns]
            if missing:
                raise SchemaError(f"frame lacks feature columns: {', '.join(missing)}")
            values = records.loc[:, list(self.feature_names)].to_numpy(dtype=np.float64)
            if "protocol" in records.columns:
                protocol = pd.to_numeric(records["protocol"], errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
            else:
                protocol = np.full(len(records), np.nan)
            return values, protocol
        rows = list(records)
        if not rows:
            return np.zeros((0, self.n_features)), np.zeros(0)
        nested = isinstance(rows[0], Mapping) and isinstance(rows[0].get("features"), Mapping)
        features = [row["features"] for row in rows] if nested else rows
        protocol = np.array([_as_float(row.get("protocol")) for row in rows], dtype=np.float64)
        try:
            values = np.fromiter(
                chain.from_iterable(map(self._getter, features)),
                dtype=np.float64,
                count=len(rows) * self.n_features,
            )
        except KeyError:
            missing = sorted(
                {name for row in features for name in self.feature_names if name not in row}
            )
            raise SchemaError(f"records lack feature keys: {', '.join(missing)}") from None
        except (TypeError, ValueError):  # a None or a string somewhere: the slow, tolerant path
            values = np.array(
                [[_as_float(row[name]) for name in self.feature_names] for row in features],
                dtype=np.float64,
            )
        return values.reshape(len(rows), self.n_features), protocol

    def _prepare(self, values: np.ndarray) -> np.ndarray:
        values = np.where(np.isnan(values), 0.0, values)
        return _signed_log1p(values) if self.log1p else values

    # -- learning ------------------------------------------------------------------------------
    def fit(self, records: Any) -> FlowTransform:
        """Learn the per-feature minimum and maximum (finite values only) from training flows."""
        values, _ = self._raw(records)
        if len(values) == 0:
            raise SchemaError("cannot fit the transform on zero flows")
        prepared = self._prepare(values)
        finite = np.isfinite(prepared)
        low = np.where(finite, prepared, np.inf).min(axis=0)
        high = np.where(finite, prepared, -np.inf).max(axis=0)
        none = ~np.isfinite(low)
        low[none] = 0.0
        high[none] = 0.0
        self.minimum, self.maximum = low, high
        return self

    def transform_many(self, records: Any) -> np.ndarray:
        """Canonical flows (DataFrame, or list of mappings with feature keys + ``protocol``, or
        of ``{"features": {...}, "protocol": ...}`` records) -> float32 (n, n_outputs)."""
        values, protocol = self._raw(records)
        return self.transform_arrays(values, protocol)

    def transform_arrays(self, values: np.ndarray, protocol: np.ndarray) -> np.ndarray:
        """The transform of (n, F) raw features in ``feature_names`` order and (n,) protocol.

        :meth:`transform_many` ends here; the streaming worker, which already holds the feature
        matrix, calls it directly (no DataFrame per batch: the frame cost more than the math).
        """
        minimum, maximum = self._bounds()
        values = np.asarray(values, dtype=np.float64)
        protocol = np.asarray(protocol, dtype=np.float64)
        prepared = self._prepare(values)
        span = maximum - minimum
        span = np.where(span > 0, span, 1.0)
        with np.errstate(invalid="ignore"):
            scaled = np.clip((prepared - minimum) / span, 0.0, 1.0)
        scaled[:, maximum <= minimum] = 0.0
        out = np.empty((len(values), self.n_outputs), dtype=np.float32)
        out[:, : self.n_features] = scaled
        out[:, self.n_features :] = protocol_one_hot(protocol)
        return out

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The fitted (minimum, maximum); refuses an unfitted transform."""
        if self.minimum is None or self.maximum is None:
            raise ArtifactError("the transform is not fitted")
        return self.minimum, self.maximum

    # -- persistence ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        minimum, maximum = self._bounds()
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "protocol_slots": list(PROTOCOL_SLOTS),
            "log1p": self.log1p,
            "nonfinite_rule": NONFINITE_RULE,
            "minimum": [float(v) for v in minimum],
            "maximum": [float(v) for v in maximum],
        }

    def canonical_json(self) -> bytes:
        return json.dumps(self.state(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def sha256(self) -> str:
        """sha256 of the canonical JSON; equals the sha256 of the file :meth:`to_json` writes."""
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def to_json(self, path: str | PathLike[str]) -> str:
        Path(path).write_bytes(self.canonical_json())
        return self.sha256

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FlowTransform:
        if state.get("format") != FORMAT or state.get("version") != FORMAT_VERSION:
            raise ArtifactError(
                f"not a stream-ids transform (format {state.get('format')!r}, "
                f"version {state.get('version')!r})"
            )
        if tuple(state.get("protocol_slots", ())) != PROTOCOL_SLOTS:
            raise ArtifactError("transform protocol slots differ from this version's")
        names = state["feature_names"]
        if not (len(names) == len(state["minimum"]) == len(state["maximum"])):
            raise ArtifactError("transform feature names and minimum/maximum differ in length")
        return cls(names, log1p=state["log1p"], minimum=state["minimum"], maximum=state["maximum"])

    @classmethod
    def from_json(cls, path: str | PathLike[str]) -> FlowTransform:
        try:
            state = json.loads(Path(path).read_bytes())
        except (OSError, ValueError) as error:
            raise ArtifactError(f"{path}: unreadable transform ({error})") from error
        if not isinstance(state, dict):
            raise ArtifactError(f"{path}: not a stream-ids transform (not a JSON object)")
        try:
            transform = cls.from_state(state)
        except ArtifactError as error:
            raise ArtifactError(f"{path}: {error}") from error
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactError(f"{path}: malformed transform ({error!r:.200})") from error
        unknown = [name for name in transform.feature_names if name not in schema.FEATURE_NAMES]
        if unknown or len(set(transform.feature_names)) != transform.n_features:
            raise ArtifactError(
                f"{path}: unknown or repeated feature names {unknown[:5]} (extra features?)"
            )
        return transform
