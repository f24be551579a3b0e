"""Relay live CICFlowMeter output (a growing CSV, or a folder of CSVs) into the ``flows`` topic.

:class:`CsvFollower` follows one file like ``tail -F``: it publishes complete lines only (a
partial last line waits for its newline), re-reads from the start after a truncation, and on
rotation (the path now names another inode) drains the old file and continues with the new
one, reading its header again. :func:`relay` follows one file (``--follow``) or every ``*.csv``
that appears in a folder (``--watch``).

Headers of every CICFlowMeter version (Java ``Flow Byts/s``, ``Src IP``; the Python
``cicflowmeter`` package's ``flow_byts_s``, ``src_ip``) are read by
:func:`stream_ids.layouts.plan_header`, as the loader reads them. Rows are published as
schema-1 flows without labels (unless the CSV has a ``Label`` column), keyed by source IP.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stream_ids.errors import InvalidRecordError, SchemaError
from stream_ids.layouts import plan_header, repair_periods
from stream_ids.schema import FEATURE_NAMES, TIME_FEATURES, canonical_name
from stream_ids.settings import Settings
from stream_ids.wire import (
    HOSTLESS,
    dead_letter,
    encode_dead_letter,
    encode_flow,
    encode_number,
    flow_object,
)

_SPECIAL = {"nan": math.nan, "infinity": math.inf, "inf": math.inf, "-infinity": -math.inf,
            "-inf": -math.inf, "": math.nan}


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        value = _SPECIAL.get(text.strip().lower())
        if value is None:
            raise
        return value


def parse_timestamp(text: str) -> float:
    """Epoch seconds (UTC) of a CICFlowMeter timestamp (epoch number, ISO, or dd/MM/yyyy ...)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value / 1e6 if value > 1e12 else value  # microseconds -> seconds
    dayfirst = "/" in text
    stamp = pd.to_datetime(text, dayfirst=dayfirst, utc=True)
    return stamp.value / 1e9


class HeaderMap:
    """Column positions of one CSV header, canonical names; refuses headers without features."""

    def __init__(self, header: list[str]) -> None:
        # The loader's header reader: the same alias table, layout and time unit as train,
        # evaluate, score and replay.
        plan = plan_header(header)
        plan.require_features("CICFlowMeter header")
        self.columns: dict[str, int] = dict(plan.positions)
        self.features = [(name, self.columns[name]) for name in FEATURE_NAMES]
        # The Python ``cicflowmeter`` package writes durations and inter-arrival times in
        # seconds, Java CICFlowMeter (what the model was trained on) in microseconds.
        self.time_scale = plan.time_scale
        self.layout = plan.layout
        self._time_features = frozenset(TIME_FEATURES)

    def _get(self, row: list[str], name: str) -> str | None:
        position = self.columns.get(name)
        if position is None or position >= len(row):
            return None
        value = row[position].strip()
        return value or None

    def flow(self, row: list[str], flow_id: str, now: float) -> dict[str, Any]:
        def optional_int(name: str) -> int | None:
            value = self._get(row, name)
            return None if value is None else int(float(value))

        values: dict[str, float] = {}
        for name, position in self.features:
            value = _number(row[position])
            if name in self._time_features:
                value *= self.time_scale
            values[name] = value
        # the loader's rule for active/idle times that cannot lie within their flow
        repair_periods(values)
        features: dict[str, Any] = {name: encode_number(value) for name, value in values.items()}
        stamp = self._get(row, "timestamp")
        return flow_object(
            flow_id=flow_id,
            src_ip=self._get(row, "src_ip") or HOSTLESS,
            src_port=optional_int("src_port"),
            dst_ip=self._get(row, "dst_ip"),
            dst_port=optional_int("dst_port"),
            protocol=optional_int("protocol"),
            timestamp=parse_timestamp(stamp) if stamp else now,
            produced_at=now,
            label=self._get(row, "label"),
            features=features,
        )


def _split_csv_line(line: str) -> list[str]:
    # CICFlowMeter never quotes; fall back to the csv module when a quote appears.
    if '"' not in line:
        return line.split(",")
    import csv

    return next(csv.reader([line]))


@dataclass
class CsvFollower:
    """Follows one CSV path across appends, truncation and rotation (tail -F)."""

    path: Path
    from_start: bool = True
    handle: Any = None
    inode: int | None = None
    position: int = 0
    partial: str = ""
    header: HeaderMap | None = None
    errors: list[str] = field(default_factory=list)

    def _open(self) -> bool:
        try:
            handle = self.path.open("r", encoding="latin-1", newline="")
            stat = os.fstat(handle.fileno())
        except FileNotFoundError:
            return False
        self.handle, self.inode = handle, stat.st_ino
        self.position, self.partial, self.header = 0, "", None
        if not self.from_start:
            self.handle.seek(0, os.SEEK_END)
            self.position = self.handle.tell()
        return True

    def _read_lines(self) -> list[str]:
        chunk = self.handle.read()
        if not chunk:
            return []
        self.position = self.handle.tell()
        text = self.partial + chunk
        lines = text.split("\n")
        self.partial = lines.pop()  # "" when the chunk ended with a newline
        return [line.rstrip("\r") for line in lines if line.strip()]

    def poll(self) -> list[list[str]]:
        """The complete new rows since the last poll (header consumed)."""
        rows: list[list[str]] = []
        if self.handle is None and not self._open():
            return rows
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            stat = None
        if stat is not None and stat.st_ino != self.inode:  # rotated: drain, then switch
            rows.extend(self._rows(self._read_lines()))
            self.handle.close()
            self.handle = None
            self.from_start = True
            if self._open():
                rows.extend(self._rows(self._read_lines()))
            return rows
        if stat is not None and stat.st_size < self.position:  # truncated: start over
            self.handle.seek(0)
            self.position, self.partial, self.header = 0, "", None
        rows.extend(self._rows(self._read_lines()))
        return rows

    def _rows(self, lines: Iterable[str]) -> list[list[str]]:
        rows = []
        for line in lines:
            fields = _split_csv_line(line)
            if self.header is None:
                self.header = HeaderMap(fields)
                continue
            if canonical_name(fields[0]) is not None and canonical_name(fields[-1]) is not None:
                continue  # a repeated header (a writer restarted into the same file)
            rows.append(fields)
        return rows

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


@dataclass
class RelayResult:
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0  # rows that could not be parsed, sent to the dead-letter topic
    errors: list[str] = field(default_factory=list)


def relay(
    settings: Settings,
    *,
    follow: Path | None = None,
    watch: Path | None = None,
    topic: str | None = None,
    poll_s: float = 0.2,
    idle_exit_s: float | None = None,
    from_start: bool = True,
    stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[int], None] | None = None,
) -> RelayResult:
    """Publish rows as they appear; returns when ``stop()`` or after ``idle_exit_s`` idle."""
    from confluent_kafka import Producer

    from producers.replay import ensure_topic, producer_config

    if (follow is None) == (watch is None):
        raise ValueError("give exactly one of follow and watch")
    topic = topic or settings.topic_flows
    ensure_topic(settings, topic)
    ensure_topic(settings, settings.topic_dead_letter)
    producer = Producer(producer_config(settings))
    result = RelayResult()
    run = secrets.token_hex(4)
    followers: dict[Path, CsvFollower] = {}
    if follow is not None:
        followers[follow] = CsvFollower(follow, from_start=from_start)

    def on_delivery(error: Any, _message: Any) -> None:
        if error is None:
            result.delivered += 1
        else:
            result.failed += 1
            if len(result.errors) < 5:
                result.errors.append(str(error))

    last_data = time.monotonic()
    try:
        while not stop():
            if watch is not None:
                for path in sorted(watch.glob("*.csv")):
                    if path not in followers:
                        followers[path] = CsvFollower(path, from_start=True)
            count = 0
            now = time.time()
            for follower in followers.values():
                try:
                    rows = follower.poll()
                except SchemaError as error:
                    result.errors.append(f"{follower.path}: {error}")
                    raise
                header = follower.header
                for row in rows:
                    if header is None:  # rows only come after a header was read
                        raise SchemaError(f"{follower.path}: rows before a header")
                    try:
                        flow = header.flow(row, f"{run}-{result.produced}", now)
                    except (ValueError, IndexError) as error:
                        # Never dropped silently: the raw row goes to the dead-letter topic.
                        record = dead_letter(
                            InvalidRecordError("unparsable_row", f"{follower.path}: {error}"),
                            ",".join(row).encode(), None, str(follower.path), None, None,
                        )
                        producer.produce(settings.topic_dead_letter,
                                         value=encode_dead_letter(record), on_delivery=on_delivery)
                        result.dead_lettered += 1
                        continue
                    key, value = encode_flow(flow)
                    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                    result.produced += 1
                    count += 1
                    if result.produced % 5000 == 0:
                        producer.poll(0)
            producer.poll(0)
            if count:
                last_data = time.monotonic()
                if on_batch is not None:
                    on_batch(count)
            elif idle_exit_s is not None and time.monotonic() - last_data > idle_exit_s:
                break
            else:
                time.sleep(poll_s)
    finally:
        remaining = producer.flush(60)
        result.failed += remaining
        for follower in followers.values():
            follower.close()
    return result
