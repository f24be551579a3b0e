"""Reliability (4): hypothesis-generated garbage into ``flows`` of a real worker.

A flood of generated values (random bytes, random JSON, good records with fields replaced or
removed, schema-2 batches of those; keyed by the right host, another host, no key or non-UTF-8
bytes), ten times as many as the good flows they are interleaved with: every flow a message
carries ends as exactly one verdict or one dead letter, every good flow gets its verdict, the
worker stays up. (The unit twin, without a broker and with many more examples, is
``tests/unit/test_reliability_validator.py``.)
"""

from __future__ import annotations

import random
import time
import warnings

import orjson
import pytest
from confluent_kafka import Producer
from fuzz_strategies import KEY, carried, message_values
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning
from reliability_harness import ReliabilityStream, Tracker

from producers.replay import load_replay_frame, prepare, producer_config
from stream_ids.datasets import improved_csvs

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N_GOOD = 400
GARBAGE_PER_GOOD = 10
KEYS = [KEY, b"10.9.9.9", None, b"\xff\xfe"]


def _garbage(count: int, seed: int = 7) -> list[tuple[bytes | None, bytes]]:
    rng = random.Random(seed)
    values: list[bytes] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        strategy = st.lists(message_values(), min_size=50, max_size=50)
        while len(values) < count:
            values.extend(strategy.example())
    return [(rng.choice(KEYS), value) for value in values[:count]]


def test_garbage_flood_is_dead_lettered_and_does_not_starve_good_flows(kafka_bootstrap, tmp_path):
    from producers.replay import flow_object

    prepared = prepare(load_replay_frame(improved_csvs(), limit=N_GOOD))
    garbage = _garbage(N_GOOD * GARBAGE_PER_GOOD)
    stream = ReliabilityStream(kafka_bootstrap, tmp_path, partitions=4)
    stream.create_topics()
    stream.start_worker("z1")
    verdicts = Tracker(stream.settings, stream.settings.topic_verdicts)
    dead = Tracker(stream.settings, stream.settings.topic_dead_letter)
    verdicts.start()
    dead.start()
    producer = Producer(producer_config(stream.settings))
    now = time.time()
    expected = 0
    good_ids = set()
    try:
        stream.wait_ready()
        for index in range(N_GOOD):
            good = flow_object(prepared, index, f"good-0-{index}", 0.0, now)
            producer.produce(stream.settings.topic_flows, key=good["src_ip"].encode(),
                             value=orjson.dumps(good))
            good_ids.add(good["flow_id"])
            expected += 1
            for key, value in garbage[index * GARBAGE_PER_GOOD : (index + 1) * GARBAGE_PER_GOOD]:
                producer.produce(stream.settings.topic_flows, key=key, value=value)
                expected += carried(value, key)
            producer.poll(0)
        assert producer.flush(60) == 0
        deadline = time.monotonic() + 300
        while len(verdicts.records) + len(dead.records) < expected:
            assert time.monotonic() < deadline, (len(verdicts.records), len(dead.records),
                                                 expected)
            assert stream.alive(), stream.diagnostics()
            time.sleep(0.5)
        time.sleep(2)  # anything beyond the expected count would show now
        assert stream.alive(), stream.diagnostics()
    finally:
        verdicts.stop()
        dead.stop()
        stream.stop()
    print(f"\nfuzz: messages {N_GOOD + len(garbage)} (good {N_GOOD}), outcomes expected "
          f"{expected}, verdicts {len(verdicts.records)}, dead letters {len(dead.records)}")
    assert len(verdicts.records) + len(dead.records) == expected
    assert good_ids <= verdicts.ids
    assert len(dead.records) > N_GOOD * GARBAGE_PER_GOOD // 2
    assert all(d["reason"] and d["topic"] == stream.settings.topic_flows for d in dead.records)
