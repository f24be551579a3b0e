"""Shared fixtures: one real Kafka broker per test session, unique topic names per test.

The broker is, in order of preference:
1. ``KAFKA_BOOTSTRAP_SERVERS`` when set (``.ci/run`` starts the local broker and sets it);
2. testcontainers' Kafka container when a Docker engine answers;
3. a broker that already answers on 127.0.0.1:9092 (e.g. ``stream-ids broker start``), unless
   ``STREAM_IDS_TEST_OWN_BROKER=1``;
4. the local KRaft broker (``stream_ids.broker``) on a free port with a temporary data folder,
   started for this session and stopped at its end.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/kafka_helpers.py


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


def _free_port_pair() -> int:
    """A port p such that p and p+1 (the controller's) are both free."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from stream_ids.broker import LocalBroker, metadata_reachable

    if os.environ.get("STREAM_IDS_TEST_OWN_BROKER") != "1" and metadata_reachable(
        "127.0.0.1:9092", timeout_s=2.0
    ):
        yield "127.0.0.1:9092"  # someone else's broker: reuse it, never stop it
        return
    broker = LocalBroker(port=_free_port_pair(), data_dir=tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def unique_topic() -> Callable[[str], str]:
    """``unique_topic("flows")`` -> ``"flows-<test>-<random>"``, a fresh name per call."""
    test_name = os.environ.get("PYTEST_CURRENT_TEST", "test").split("::")[-1].split(" ")[0]
    slug = "".join(ch if ch.isalnum() else "-" for ch in test_name)[:40]

    def make(base: str) -> str:
        return f"{base}-{slug}-{uuid.uuid4().hex[:10]}"

    return make
