"""The Faust application of a stream-ids worker.

:func:`create_app` builds a :class:`faust.App` from :class:`~stream_ids.settings.Settings`:
broker and TLS/SASL credentials, topic partitions and replication, in-memory table store with
changelog recovery, earliest offset reset. The topics live in :mod:`stream_ids.topics`, the
per-host window table in :mod:`stream_ids.tables`, the agents in :mod:`stream_ids.agents`.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from pathlib import Path
from typing import Any

import faust

from stream_ids.faust_fixes.log_noise import install_log_filters
from stream_ids.settings import Settings


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
    )
    if settings.ssl_certfile is not None:
        context.load_cert_chain(
            str(settings.ssl_certfile),
            str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None,
        )
    return context


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials for the configured security protocol (None for PLAINTEXT)."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    return faust.SASLCredentials(
        username=settings.sasl_username or "",
        password=password,
        mechanism=settings.sasl_mechanism or "PLAIN",
        ssl_context=_ssl_context(settings) if protocol == "SASL_SSL" else None,
    )


def worker_name() -> str:
    return os.environ.get("STREAM_IDS_WORKER_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def create_app(settings: Settings, **overrides: Any) -> faust.App:
    """A Faust app configured from ``settings`` (``overrides`` win, e.g. in tests)."""
    web_port = settings.web_port
    # The web server is opt-in (several workers on one machine would fight over the port):
    # it runs when STREAM_IDS_WEB_PORT is set to a port other than 0.
    web_enabled = "web_port" in settings.model_fields_set and web_port != 0
    bootstrap = ";".join(
        f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")
    )
    config: dict[str, Any] = {
        "broker": bootstrap,
        "broker_credentials": broker_credentials(settings),
        "store": "memory://",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "topic_allow_declare": True,
        "consumer_auto_offset_reset": "earliest",
        "stream_wait_empty": False,
        "web_enabled": web_enabled,
        "web_port": web_port or 6066,
        "web_host": "127.0.0.1",
        "datadir": str(settings.data_dir / settings.app_id),
        "producer_linger_ms": 5,
        "producer_max_batch_size": 1 << 20,
        "producer_compression_type": producer_compression(settings.compression),
        "broker_commit_every": 10_000,
        "broker_commit_interval": 0.05,  # a crash repeats ~this much (docs/reliability.md)
        "stream_buffer_maxsize": 16_384,
        "table_cleanup_interval": 30.0,
        "processing_guarantee": settings.processing_guarantee,
        # A crashed worker's partitions move after the session timeout (Faust's default 60 s
        # stalls the group that long; docs/reliability.md). Heartbeats come from the event
        # loop, which scoring never blocks (executor), so a short timeout is safe.
        "broker_session_timeout": 15.0,
        "broker_heartbeat_interval": 3.0,
    }
    config.update(overrides)
    install_log_filters()  # two messages of Faust's stack that are noise here
    Path(config["datadir"]).mkdir(parents=True, exist_ok=True)
    return faust.App(settings.app_id, autodiscover=False, **config)


def producer_compression(name: str) -> str | None:
    """The aiokafka ``compression_type`` for a ``Settings.compression`` name.

    aiokafka compresses lz4, snappy and zstd through cramjam (a dependency); without it the
    worker would fail at its first send, so it falls back to no compression with a warning.
    """
    if name == "none":
        return None
    if name != "gzip":
        try:
            import cramjam  # noqa: F401
        except ImportError:
            logging.getLogger(__name__).warning("cramjam missing: %s compression is off", name)
            return None
    return name
