"""Reliability (6): Kafka over mutual TLS end to end, with a test-made CA.

A LocalBroker of its own gets an ``SSL`` listener (PEM keystore/truststore, client certificates
required); replay, the worker (Faust/aiokafka) and the verdict reader all connect to that
listener only, configured through the ``STREAM_IDS_SECURITY_PROTOCOL``/``SSL_*`` settings.
A client without a certificate is refused.
"""

from __future__ import annotations

import socket
import time

import pytest
from reliability_harness import BackgroundReplay, ReliabilityStream, summarise
from tls_helpers import make_pki

from producers.replay import load_replay_frame
from stream_ids.broker import LocalBroker, metadata_reachable, ssl_listener_properties
from stream_ids.datasets import improved_csvs

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N_FLOWS = 2000


def _free_ports(count: int) -> list[int]:
    """``count`` consecutive free ports."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port))
        except OSError:
            continue
        return list(range(base, base + count))
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    pki = make_pki(folder / "pki")
    port, _controller, ssl_port = _free_ports(3)
    broker = LocalBroker(
        port=port,
        data_dir=folder / "broker",
        extra_listeners={"SSL": ("127.0.0.1", ssl_port)},
        extra_properties=ssl_listener_properties(pki.broker_pem, pki.ca_cert),
    )
    broker.start()
    try:
        yield f"127.0.0.1:{ssl_port}", pki
    finally:
        broker.stop()


def test_replay_worker_and_readers_over_mutual_tls(tls_broker, tmp_path):
    bootstrap, pki = tls_broker
    assert not metadata_reachable(bootstrap, timeout_s=3.0, **{"security.protocol": "SSL",
                                  "ssl.ca.location": str(pki.ca_cert)}), "no client cert"
    frame = load_replay_frame(improved_csvs(), limit=N_FLOWS)
    tls = {
        "STREAM_IDS_SECURITY_PROTOCOL": "SSL",
        "STREAM_IDS_SSL_CAFILE": str(pki.ca_cert),
        "STREAM_IDS_SSL_CERTFILE": str(pki.client_cert),
        "STREAM_IDS_SSL_KEYFILE": str(pki.client_key),
    }
    stream = ReliabilityStream(bootstrap, tmp_path, partitions=4, **tls)
    stream.settings = stream.settings.model_copy(
        update={"security_protocol": "SSL", "ssl_cafile": pki.ca_cert,
                "ssl_certfile": pki.client_cert, "ssl_keyfile": pki.client_key}
    )
    with stream.running("t1") as tracker:
        producer = BackgroundReplay(stream.settings, frame, "t")
        producer.start()
        producer.join(120)
        assert producer.error is None and producer.result.delivered == N_FLOWS
        tracker.wait_unique(N_FLOWS, timeout=300)
        time.sleep(1)
        assert stream.alive(), stream.diagnostics()
    summary = summarise(tracker.records, N_FLOWS)
    assert summary["lost"] == 0 and summary["duplicated"] == 0, summary
    log = (tmp_path / "t1.log").read_text()
    assert f"broker {bootstrap}" in log
