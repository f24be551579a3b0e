"""Property test of the record validator and the scoring agent's batch split (no broker).

Whatever bytes arrive on ``flows`` (random bytes, random JSON, good records with one field
replaced by random JSON or removed, schema-2 batches of such records), every flow a message
carries ends as exactly one verdict or exactly one dead-letter record with a known reason, and
nothing raises. The integration twin (real worker, real broker) is
``tests/integration/test_reliability_fuzz.py``.
"""

from __future__ import annotations

import asyncio

from fuzz_strategies import KEY, carried, message_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streaming_fakes import FakeModel, event, fake_topics

from stream_ids.rolling import RollingStats
from stream_ids.wire import REASONS, parse_message
from stream_ids.worker.batch import BatchScorer


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(message_values(), st.sampled_from([KEY, b"10.9.9.9", None, b"\xff"])),
                min_size=1, max_size=8))
def test_every_flow_ends_as_one_verdict_or_one_dead_letter(messages: list) -> None:
    topics = fake_topics()
    scorer = BatchScorer(FakeModel(), {}, topics, RollingStats("w"))
    events = [event(value, key, offset=i) for i, (value, key) in enumerate(messages)]
    asyncio.run(scorer.process(events))
    verdicts = [v for _, v in topics.verdicts.sent]
    dead = [v for _, v in topics.dead_letter.sent]
    expected = sum(carried(value, key) for value, key in messages)
    assert len(verdicts) + len(dead) == expected
    assert {d["reason"] for d in dead} <= set(REASONS)
    # dead letters point back at their message; verdict scores are finite numbers in [0, 1]
    assert all(0 <= d["offset"] < len(messages) for d in dead)
    assert all(0.0 <= v["score"] <= 1.0 for v in verdicts)


@settings(max_examples=1000, deadline=None)
@given(message_values(), st.sampled_from([KEY, None, b"\xfe"]))
def test_parse_message_never_raises_and_sets_exactly_one(value: bytes, key: bytes | None) -> None:
    results = parse_message(value, key)
    assert len(results) == carried(value, key, agent=False)
    for parsed, error, _raw in results:
        assert (parsed is None) != (error is None)
        if error is not None:
            assert error.reason in REASONS
