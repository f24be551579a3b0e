"""One error hierarchy for the whole package.

Callers catch :class:`StreamIdsError` at the edges (CLI, agents); the subclasses say
which concern failed so that messages and dead-letter reasons stay specific.
"""

from __future__ import annotations


class StreamIdsError(Exception):
    """Base class of every error stream-ids raises on purpose."""


class ConfigurationError(StreamIdsError):
    """Settings, environment or a missing external tool (java, mvn)."""


class BrokerError(StreamIdsError):
    """The local Kafka broker could not be resolved, started, reached or stopped."""


class SchemaError(StreamIdsError):
    """A CSV file or a record does not carry the columns or types that are required."""


class InvalidRecordError(SchemaError):
    """One streamed record is unusable; ``reason`` goes to the dead-letter topic."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ArtifactError(StreamIdsError):
    """A model or transform file is missing, corrupted, tampered with or inconsistent."""
