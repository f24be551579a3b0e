"""Is a Kafka broker there? One quiet metadata request, one clear error when not.

librdkafka logs every failed connection attempt to stderr (``%3|...|FAIL|... Connection
refused``, dozens a second); the probe's client has ``log_level`` 0, so a missing broker costs
one line of ours instead. Every command that needs Kafka calls :func:`require_broker` before it
starts anything.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from stream_ids.errors import BrokerError

# librdkafka notices of conditions it retries by itself (a fresh broker's coordinators still
# loading, queued events dropped at close): not for the console.
TRANSIENT_NOTICES = ("Coordinator load in progress", "unserved events from background queue")


class BrokerUnavailableError(BrokerError):
    """No Kafka broker answered at the configured bootstrap servers."""


def _any_port_open(bootstrap: str, timeout: float) -> bool:
    """Whether a TCP connection to any of the bootstrap servers succeeds (refused: at once)."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        host = host.strip("[]") or "localhost"
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def broker_reachable(settings: Any, timeout: float = 3.0) -> bool:
    """True when a metadata request to ``settings``' brokers succeeds within ``timeout`` s.

    A bootstrap list whose every port refuses connections answers False at once.
    """
    from confluent_kafka.admin import AdminClient

    if not _any_port_open(settings.bootstrap_servers, min(timeout, 2.0)):
        return False

    config = settings.confluent_config()
    config["log_level"] = 0  # the probe's failures are ours to report, not librdkafka's
    config["socket.connection.setup.timeout.ms"] = max(1000, int(timeout * 1000))
    try:
        AdminClient(config).list_topics(timeout=timeout)
    except Exception:
        return False
    return True


class _TransientNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(notice in message for notice in TRANSIENT_NOTICES)


def librdkafka_logger() -> logging.Logger:
    """The Python logger for confluent-kafka clients' ``logger`` setting.

    librdkafka's own lines then pass through Python logging (served by ``poll()``): warnings and
    errors still reach stderr (logging's last-resort handler when none is configured), the
    transient notices it retries by itself do not.
    """
    log = logging.getLogger("stream_ids.librdkafka")
    if not any(isinstance(f, _TransientNotices) for f in log.filters):
        log.addFilter(_TransientNotices())
    return log


def no_broker_message(bootstrap: str) -> str:
    return (
        f"no Kafka broker at {bootstrap}: start one with `stream-ids broker start`, or point "
        "STREAM_IDS_BOOTSTRAP_SERVERS (or --bootstrap) at yours"
    )


def require_broker(settings: Any, timeout: float = 5.0) -> None:
    """Raise :class:`BrokerUnavailableError` (one line: address, what to do) when none answers."""
    if not broker_reachable(settings, timeout):
        raise BrokerUnavailableError(no_broker_message(settings.bootstrap_servers))
