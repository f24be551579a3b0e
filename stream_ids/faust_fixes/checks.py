"""The start-up check: every private attribute of Faust (and aiokafka) the fixes read exists.

The fixes read internals that have no public accessor in faust-streaming 0.15; a release that
renames one would otherwise make a fix silently do nothing (holes unfilled, commits held).
:func:`check_internals` runs when the worker app is built and raises a
:class:`~stream_ids.errors.StreamIdsError` naming the attribute and the installed versions.

An attribute is found on its class (a class attribute or annotation) or assigned in one of the
class's ``__init__`` methods (its bytecode names it): instances need not exist yet.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import PackageNotFoundError, version
from typing import NamedTuple

from stream_ids.errors import StreamIdsError


class Internal(NamedTuple):
    """One private attribute a fix reads: where it lives and which fix needs it."""

    module: str
    owner: str  # a class of ``module``
    attribute: str
    fix: str  # the faust_fixes module that reads it


INTERNALS: tuple[Internal, ...] = (
    Internal("faust.app.base", "App", "_consumer", "hole_filling"),
    Internal("faust.transport.consumer", "Consumer", "_committed_offset", "hole_filling"),
    Internal("faust.transport.consumer", "Consumer", "_read_offset", "hole_filling"),
    Internal("faust.transport.consumer", "Consumer", "_acked", "hole_filling"),
    Internal("faust.transport.consumer", "Consumer", "_acked_index", "duplicate_acks"),
    Internal("faust.transport.consumer", "Consumer", "_gap", "duplicate_acks"),
    Internal("faust.transport.consumer", "Consumer", "_new_offset", "duplicate_acks"),
    Internal("faust.transport.consumer", "Consumer", "_active_partitions", "recovery_stall"),
    Internal("faust.tables.recovery", "Recovery", "_recovery_started_at", "recovery_stall"),
    Internal("faust.tables.recovery", "Recovery", "_generation_id", "recovery_stall"),
    Internal("faust.tables.recovery", "Recovery", "_active_events_received_at", "recovery_stall"),
    Internal("faust.types.tuples", "Message", "acked", "held_acks"),
    Internal("faust.stores.memory", "Store", "data", "changelog_batches"),
    Internal("faust.transport.drivers.aiokafka", "Producer", "_producer", "record_batches"),
    Internal("aiokafka.producer.producer", "AIOKafkaProducer", "_partition", "record_batches"),
    Internal("aiokafka.producer.producer", "AIOKafkaProducer", "create_batch", "record_batches"),
    Internal("aiokafka.producer.producer", "AIOKafkaProducer", "send_batch", "record_batches"),
    Internal("aiokafka.client", "AIOKafkaClient", "_wait_on_metadata", "record_batches"),
)


def has_attribute(owner: type, attribute: str) -> bool:
    """``attribute`` is a class attribute, an annotation, or set by an ``__init__`` of
    ``owner``'s classes."""
    if hasattr(owner, attribute):
        return True
    for cls in inspect.getmro(owner):
        if attribute in getattr(cls, "__annotations__", {}):
            return True
        init = cls.__dict__.get("__init__")
        code = getattr(init, "__code__", None)
        if code is not None and attribute in code.co_names:
            return True
    return False


def versions() -> str:
    found = []
    for package in ("faust-streaming", "aiokafka"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def check_internals(internals: tuple[Internal, ...] = INTERNALS) -> None:
    """Raise :class:`StreamIdsError` for the first private attribute that is missing."""
    for internal in internals:
        owner = getattr(importlib.import_module(internal.module), internal.owner, None)
        if not isinstance(owner, type) or not has_attribute(owner, internal.attribute):
            raise StreamIdsError(
                f"{internal.module}.{internal.owner}.{internal.attribute} is missing "
                f"({versions()}): stream_ids.faust_fixes.{internal.fix} reads it. This release "
                "of stream-ids supports faust-streaming>=0.15,<0.16; install that, or update "
                "the fix (pyproject.toml pins the range)."
            )
