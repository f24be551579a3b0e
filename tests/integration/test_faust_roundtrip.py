"""faust-streaming, aiokafka and the broker work together.

10,000 keyed records through a real worker, each exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka_helpers import consume_all, create_topic, produce_json

pytestmark = pytest.mark.integration

RECORDS = 10_000


def test_a_real_faust_worker_forwards_every_record_exactly_once(
    kafka_bootstrap: str, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    topic_in, topic_out = unique_topic("roundtrip-in"), unique_topic("roundtrip-out")
    create_topic(kafka_bootstrap, topic_in, partitions=4)
    create_topic(kafka_bootstrap, topic_out, partitions=4)
    sent = {
        f"record-{index}": {"index": index, "host": f"10.0.{index % 97}.{index % 13}"}
        for index in range(RECORDS)
    }
    produce_json(kafka_bootstrap, topic_in, sent.items())

    environment = {
        **os.environ,
        "ROUNDTRIP_APP_ID": unique_topic("roundtrip-app"),
        "ROUNDTRIP_BOOTSTRAP": kafka_bootstrap,
        "ROUNDTRIP_IN": topic_in,
        "ROUNDTRIP_OUT": topic_out,
        "ROUNDTRIP_DATADIR": str(tmp_path / "faust"),
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("roundtrip_app.py")), "worker", "-l", "warn"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        received = consume_all(
            kafka_bootstrap,
            topic_out,
            RECORDS,
            timeout_s=180,
            settle_s=3,
            alive=lambda: worker.poll() is None,
        )
        assert worker.poll() is None, "the worker died"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()

    counts = Counter(key for key, _ in received)
    duplicated = {key: n for key, n in counts.items() if n > 1}
    assert duplicated == {}
    assert set(counts) == set(sent)
    assert all(value == sent[key] for key, value in received)
