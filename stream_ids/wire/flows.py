"""The ``flows`` message, schema 1 (one flow per record, keyed by its UTF-8 source host)::

    {"schema": 1, "flow_id": "...", "src_ip": "...", "src_port": 1, "dst_ip": "...",
     "dst_port": 80, "protocol": 6, "timestamp": 1499450193.8, "produced_at": ...,
     "label": "BENIGN" | null, "features": {"flow_duration": 1.0, ...}}

:func:`flow_object` is the one writer of that object (replay, relay and :meth:`FlowIn.to_wire`
all go through it); :func:`stream_ids.wire.validate.parse_flow_message` reads it back. The
batched shapes (schemas 2 and 3) are in :mod:`stream_ids.wire.batches` and
:mod:`stream_ids.wire.columnar`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
import orjson

from stream_ids.schema import FEATURE_NAMES
from stream_ids.wire.numbers import encode_features

# The source host of flows that have none (79-column layouts): the worker keys them by this
# synthetic host and scores each as its own host (padding plus itself), as offline scoring does.
HOSTLESS = "unknown"

SCHEMA_FLOW = 1
SCHEMA_BATCH = 2
SCHEMA_COLUMNS = 3
SCHEMAS = (SCHEMA_FLOW, SCHEMA_BATCH, SCHEMA_COLUMNS)

__all__ = ["HOSTLESS", "SCHEMAS", "SCHEMA_BATCH", "SCHEMA_COLUMNS", "SCHEMA_FLOW", "Flow",
           "FlowIn", "encode_flow", "flow_object"]


def flow_object(
    *,
    flow_id: str,
    src_ip: str,
    src_port: int | None,
    dst_ip: str | None,
    dst_port: int | None,
    protocol: int | None,
    timestamp: float,
    produced_at: float | None,
    label: str | None,
    features: dict[str, Any],
) -> dict[str, Any]:
    """The schema-1 ``flows`` object; ``features`` already JSON-safe (see :mod:`.numbers`)."""
    return {
        "schema": SCHEMA_FLOW,
        "flow_id": flow_id,
        "src_ip": src_ip,
        "src_port": src_port,
        "dst_ip": dst_ip,
        "dst_port": dst_port,
        "protocol": protocol,
        "timestamp": timestamp,
        "produced_at": produced_at,
        "label": label,
        "features": features,
    }


def encode_flow(obj: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of a schema-1 object on the ``flows`` topic."""
    return obj["src_ip"].encode(), orjson.dumps(obj)


@dataclass(slots=True)
class FlowIn:
    """One validated flow: identifiers and ``values``, the model features in FEATURE_NAMES order."""

    flow_id: str
    src_ip: str
    src_port: int | None
    dst_ip: str | None
    dst_port: int | None
    protocol: int | None
    timestamp: float
    produced_at: float | None
    label: str | None
    values: tuple[float, ...]

    @property
    def features(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values, strict=True))

    def to_wire(self) -> dict[str, Any]:
        """The schema-1 ``flows`` value of this flow."""
        return flow_object(
            flow_id=self.flow_id,
            src_ip=self.src_ip,
            src_port=self.src_port,
            dst_ip=self.dst_ip,
            dst_port=self.dst_port,
            protocol=self.protocol,
            timestamp=self.timestamp,
            produced_at=self.produced_at,
            label=self.label,
            features=encode_features(self.values),
        )


class Flow(faust.Record, serializer="json"):
    """A schema-1 ``flows`` value (documentation, consumers, tests)."""

    schema: int
    flow_id: str
    src_ip: str
    timestamp: float
    features: dict[str, Any]
    src_port: int | None = None
    dst_ip: str | None = None
    dst_port: int | None = None
    protocol: int | None = None
    produced_at: float | None = None
    label: str | None = None
