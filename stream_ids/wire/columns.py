"""Validated flows column by column: the shape the scoring agent works in (no object per flow)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from stream_ids.schema import FEATURE_NAMES
from stream_ids.wire.flows import FlowIn


@dataclass
class FlowColumns:
    """Validated flows column by column: the scoring agent's shape (no object per flow).

    ``values`` holds the model features in FEATURE_NAMES order; ``element`` is each flow's
    index in its message (0 for schema 1), which makes its source position.
    """

    flow_id: list[str]
    src_ip: list[str]
    src_port: list[int | None]
    dst_ip: list[str | None]
    dst_port: list[int | None]
    protocol: list[int | None]
    timestamp: list[float]
    produced_at: list[float | None]
    label: list[str | None]
    values: np.ndarray
    element: list[int]

    def __len__(self) -> int:
        return len(self.flow_id)

    @classmethod
    def empty(cls) -> FlowColumns:
        return cls.of_flows([], [])

    @classmethod
    def of_flows(cls, flows: list[FlowIn], elements: list[int]) -> FlowColumns:
        return cls(
            flow_id=[flow.flow_id for flow in flows],
            src_ip=[flow.src_ip for flow in flows],
            src_port=[flow.src_port for flow in flows],
            dst_ip=[flow.dst_ip for flow in flows],
            dst_port=[flow.dst_port for flow in flows],
            protocol=[flow.protocol for flow in flows],
            timestamp=[flow.timestamp for flow in flows],
            produced_at=[flow.produced_at for flow in flows],
            label=[flow.label for flow in flows],
            values=np.array([flow.values for flow in flows], dtype=np.float64).reshape(
                len(flows), len(FEATURE_NAMES)
            ),
            element=list(elements),
        )

    def flows(self) -> list[FlowIn]:
        """The same flows as :class:`FlowIn` records (tests, tools)."""
        rows = self.values.tolist()
        return [
            FlowIn(
                self.flow_id[i],
                self.src_ip[i],
                self.src_port[i],
                self.dst_ip[i],
                self.dst_port[i],
                self.protocol[i],
                self.timestamp[i],
                self.produced_at[i],
                self.label[i],
                tuple(rows[i]),
            )
            for i in range(len(self))
        ]

    @staticmethod
    def list_fields() -> list[str]:
        """Every field but ``values``: the per-flow lists."""
        return [field.name for field in fields(FlowColumns) if field.name != "values"]

    def extend(self, other: FlowColumns) -> None:
        """Append ``other``'s flows (``values`` is concatenated by :meth:`concat`)."""
        for name in self.list_fields():
            getattr(self, name).extend(getattr(other, name))

    @classmethod
    def concat(cls, parts: list[FlowColumns]) -> FlowColumns:
        out = cls.empty()
        for part in parts:
            out.extend(part)
        if parts:
            out.values = np.concatenate([part.values for part in parts])
        return out

    def select(self, keep: np.ndarray) -> FlowColumns:
        """The flows where the boolean ``keep`` is true."""
        mask = keep.tolist()
        lists = {
            name: [item for item, ok in zip(getattr(self, name), mask, strict=True) if ok]
            for name in self.list_fields()
        }
        return FlowColumns(values=self.values[keep], **lists)

