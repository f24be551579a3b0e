"""Runtime settings: frozen, read from ``STREAM_IDS_*`` environment variables (and ``.env``).

Secrets (SASL password, key password) are :class:`pydantic.SecretStr` so they never appear in
``repr()``, logs or error messages.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


class Settings(BaseSettings):
    """Everything a worker, producer or CLI command needs to find Kafka and the model."""

    model_config = SettingsConfigDict(
        env_prefix="STREAM_IDS_", env_file=".env", extra="ignore", frozen=True
    )

    bootstrap_servers: str = "127.0.0.1:9092"
    # Kafka security: passed to confluent-kafka and to Faust (aiokafka) alike.
    security_protocol: SecurityProtocol = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    # Topics.
    topic_flows: str = "flows"
    topic_verdicts: str = "verdicts"
    topic_alerts: str = "alerts"
    topic_stats: str = "stats"
    topic_dead_letter: str = "flows-dlq"
    topic_partitions: int = Field(default=8, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)

    # Worker.
    app_id: str = "stream-ids"
    model_dir: Path | None = None  # None: the model shipped inside the package
    batch_size: int = Field(default=512, ge=1)
    # 0.02 s: half-load latency p50 ~90 ms / p99 ~230-330 ms vs 0.05 s ~160 / 300-430 ms
    # (bench/run.py --latency-rate, docs/performance.md section 7)
    max_wait_s: float = Field(default=0.02, gt=0)
    stats_interval_s: float = Field(default=2.0, gt=0)
    web_port: int = Field(default=6066, ge=0, le=65535)
    # Prometheus /metrics of a worker (STREAM_IDS_METRICS_PORT); 0 disables it.
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    data_dir: Path = Path(".stream-ids")
    # Delivery of verdicts (docs/reliability.md): "at_least_once" (offsets commit after the
    # verdicts are sent; a crash repeats some) or "exactly_once" (Kafka transactions).
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    # Threads the model may use (TensorFlow intra-/inter-op pools); 0: the backend's default
    # (one per core). 1 by default: the worker already runs the model in its own thread beside
    # the event loop, and on 2 cores TF's 2-thread pools competed with it and with the broker:
    # half-load latency p50 124-139 -> 83-95 ms, p99 252-342 -> 178-196 ms
    # (docs/performance.md section 8).
    model_threads: int = Field(default=1, ge=0)
    # Compression of what the worker produces (verdicts, alerts, stats, host-state changelog).
    # snappy: aiokafka's lz4 is level 9 (LZ4-HC), 5.7x the CPU of snappy on verdict batches and
    # 20x on host states (bench/compression.py, docs/performance.md section 8).
    compression: Literal["snappy", "lz4", "zstd", "gzip", "none"] = "snappy"
    # Bounded per-host state (docs/reliability.md "Bounded host state"). A host silent for
    # this many seconds of flow time is dropped (a changelog tombstone); its next flow starts a
    # fresh window, as offline scoring does (stream_ids.sequences.make_windows).
    # 600 s: stream_ids.sequences.DEFAULT_HOST_TTL_S, offline scoring's default (a literal
    # here: settings stay free of numpy/pandas imports; a unit test keeps the two equal).
    host_ttl_s: float = Field(default=600.0, gt=0)
    # At most this many hosts in a worker's state; beyond it the least recently seen go first.
    # ~0.4-1.7 kB a host (docs/operations.md): 200k hosts are ~80-340 MB.
    max_hosts: int = Field(default=200_000, ge=1)

    def confluent_config(self) -> dict[str, Any]:
        """The security part of a confluent-kafka client configuration."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.ssl_cafile is not None:
            config["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile is not None:
            config["ssl.certificate.location"] = str(self.ssl_certfile)
        if self.ssl_keyfile is not None:
            config["ssl.key.location"] = str(self.ssl_keyfile)
        if self.ssl_key_password is not None:
            config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        if self.sasl_mechanism is not None:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        return config


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
