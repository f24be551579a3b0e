"""Small stand-ins for the scorer, topics, table and Faust events (no broker, no TensorFlow)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson

from stream_ids.schema import FEATURE_NAMES


class FakeTransform:
    """A :class:`stream_ids.worker.protocols.FeatureTransform`: duration/1000, fwd packets, 1."""

    feature_names: tuple[str, ...] = ("flow_duration", "total_fwd_packets")

    def transform_arrays(self, values: np.ndarray, protocol: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).reshape(-1, 2)
        rows = np.column_stack([values[:, 0] / 1000.0, values[:, 1], np.ones(len(values))])
        return rows.astype(np.float32)

    def transform_many(self, records: Any) -> np.ndarray:
        """Schema-1 flow objects -> model inputs (the tests' offline reference)."""
        values = [[r["features"][name] for name in self.feature_names] for r in records]
        return self.transform_arrays(np.asarray(values, dtype=np.float64), np.zeros(len(values)))


class FakeModel:
    """A :class:`stream_ids.worker.protocols.ScoringModel` without a split network."""

    window = 4
    n_inputs = 3
    state_width = 3
    state_tag = b""
    threshold = 0.5
    model_version = "fake-1"
    calibration = None

    def __init__(self) -> None:
        self.transform = FakeTransform()
        self.split: Any = None

    def enable_split(self) -> bool:
        return False  # whole windows of model inputs only

    def warm_up(self) -> None:
        return None

    def encode(self, transformed: np.ndarray) -> np.ndarray:
        raise NotImplementedError("no split network")

    def score_encoded(self, encodings: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        raise NotImplementedError("no split network")

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        # depends on every slot, so ordering/history mistakes change the score
        weights = np.arange(1, self.window + 1, dtype=np.float32)[None, :]
        value = (windows[:, :, 0] * weights).sum(axis=1) / 100.0
        return (value - np.floor(value)).astype(np.float32)


class FakeTopic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[bytes | None, dict[str, Any]]] = []

    async def send(self, *, key: bytes | None = None, value: bytes = b"") -> None:
        self.sent.append((key, orjson.loads(value)))


def fake_topics() -> Any:
    from stream_ids.topics import Topics

    return Topics(
        flows=FakeTopic("flows"),
        verdicts=FakeTopic("verdicts"),
        alerts=FakeTopic("alerts"),
        stats=FakeTopic("stats"),
        dead_letter=FakeTopic("flows-dlq"),
    )


def event(value: bytes | None, key: bytes | None, offset: int = 0, partition: int = 0) -> Any:
    message = SimpleNamespace(
        key=key, value=value, topic="flows", partition=partition, offset=offset
    )
    return SimpleNamespace(message=message, key=key, value=value)


def flow(
    flow_id: str = "f1",
    src_ip: str = "10.0.0.1",
    duration: float = 1000.0,
    fwd: float = 2.0,
    timestamp: float = 1_499_450_000.0,
    label: str | None = "BENIGN",
) -> dict[str, Any]:
    features: dict[str, Any] = {name: 0.0 for name in FEATURE_NAMES}
    features["flow_duration"] = duration
    features["total_fwd_packets"] = fwd
    return {
        "schema": 1,
        "flow_id": flow_id,
        "src_ip": src_ip,
        "src_port": 5555,
        "dst_ip": "10.0.0.9",
        "dst_port": 80,
        "protocol": 6,
        "timestamp": timestamp,
        "produced_at": timestamp,
        "label": label,
        "features": features,
    }


def message(obj: Any) -> tuple[bytes, bytes]:
    return obj["src_ip"].encode(), orjson.dumps(obj)
