"""Window state across batches, rolling statistics, and the scoring agent's per-batch work."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest
from streaming_fakes import FakeModel, event, fake_topics, flow, message

from stream_ids.agents.scoring import BatchScorer
from stream_ids.rolling import Counts, RollingStats
from stream_ids.sequences import make_windows
from stream_ids.tables import (
    HOSTLESS_KEY,
    build_batch_windows,
    decode_history,
    encode_history,
)


def test_history_bytes_round_trip() -> None:
    history = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert np.array_equal(decode_history(encode_history(history), 3), history)
    assert decode_history(None, 3).shape == (0, 3)
    assert decode_history(b"\x00" * 8, 3).shape == (0, 3)  # another model's state: start afresh


@pytest.mark.parametrize("batch_size", [1, 3, 7, 50])
def test_batches_equal_offline_windows(batch_size: int) -> None:
    rng = np.random.default_rng(0)
    n, window = 50, 4
    values = rng.random((n, 3), dtype=np.float32) + 0.01
    hosts = [rng.choice([b"a", b"b", b"c"]) for _ in range(n)]
    expected, mask = make_windows(values, [h.decode() for h in hosts], np.arange(n), window)
    state: dict[bytes, np.ndarray] = {}
    got, lengths = [], []
    for start in range(0, n, batch_size):
        w, length, updated = build_batch_windows(
            values[start : start + batch_size], hosts[start : start + batch_size], state, window
        )
        state.update({h: decode_history(encode_history(v), 3) for h, v in updated.items()})
        got.append(w)
        lengths.append(length)
    assert np.array_equal(np.concatenate(got), expected)
    assert np.array_equal(np.concatenate(lengths), mask.sum(axis=1))
    assert all(len(v) <= window - 1 for v in state.values())


def test_hostless_flows_keep_no_history() -> None:
    values = np.ones((3, 2), dtype=np.float32)
    windows, lengths, updated = build_batch_windows(values, [HOSTLESS_KEY] * 3, {}, 3)
    assert lengths.tolist() == [1, 1, 1] and updated == {}
    assert not windows[:, :2].any()


def test_counts_and_derived_rates() -> None:
    counts = Counts.of([True, True, False, False, True], [True, False, False, True, None])
    assert (counts.tp, counts.fp, counts.tn, counts.fn, counts.labelled) == (1, 1, 1, 1, 4)
    record = counts.record("w", "cumulative", 0, 1, 1)
    assert record["flows"] == 5 and record["alerts"] == 3
    assert record["false_alarm_rate"] == 0.5 and record["precision"] == 0.5
    assert record["recall"] == 0.5


def test_unlabelled_stats_have_null_confusion() -> None:
    record = Counts.of([True], [None]).record("w", "cumulative", 0, 1, 1)
    assert record["tp"] is None and record["false_alarm_rate"] is None


def test_rolling_windows() -> None:
    stats = RollingStats("w", started_at=1000.0)
    stats.add(Counts.of([True], [True]), at=1001.0)
    stats.add(Counts.of([False], [False]), at=1005.5)
    first = {r["window"]: r for r in stats.snapshot(now=1006.0)}
    assert first["tumbling_10s"]["flows"] == 2 and first["tumbling_10s"]["window_start"] == 1000
    stats.add(Counts.of([True, False], [False, False]), at=1012.0)
    records = stats.snapshot(now=1013.0)
    tumbling = [r for r in records if r["window"] == "tumbling_10s"]
    # the closed window once more (final), then the current one
    assert [(r["window_start"], r["flows"]) for r in tumbling] == [(1000, 2), (1010, 2)]
    by_window = {r["window"]: r for r in records}
    assert by_window["sliding_60s"]["flows"] == 4
    assert by_window["cumulative"]["flows"] == 4 and by_window["cumulative"]["fp"] == 1
    later = {r["window"]: r for r in stats.snapshot(now=1071.5)}
    assert later["sliding_60s"]["flows"] == 2  # the 1001 and 1005 buckets slid out
    assert later["cumulative"]["flows"] == 4


def _scorer() -> tuple[BatchScorer, dict, object]:
    topics = fake_topics()
    table: dict[bytes, bytes] = {}
    return BatchScorer(FakeModel(), table, topics, RollingStats("w")), table, topics


def test_batch_scorer_one_outcome_per_record_and_host_order() -> None:
    scorer, table, topics = _scorer()
    good = [flow(f"g{i}", src_ip=f"10.0.0.{i % 2}", duration=100.0 * (i + 1)) for i in range(6)]
    events = [event(*reversed(message(obj)), offset=i) for i, obj in enumerate(good)]
    events.insert(2, event(b"{broken", b"10.0.0.0", offset=99))
    events.append(event(orjson.dumps(good[0]), b"10.0.0.7", offset=100))  # key mismatch
    events.append(event(orjson.dumps(good[1]), None, offset=101))  # no key
    asyncio.run(scorer.process(events[:4]))
    asyncio.run(scorer.process(events[4:]))
    verdicts = [v for _, v in topics.verdicts.sent]
    assert sorted(v["flow_id"] for v in verdicts) == sorted(f"g{i}" for i in range(6))
    reasons = [v["reason"] for _, v in topics.dead_letter.sent]
    assert reasons == ["invalid_json", "key_mismatch", "key_mismatch"]
    assert [v["window_length"] for v in verdicts] == [1, 1, 2, 2, 3, 3]
    assert {key for key in table} == {b"10.0.0.0", b"10.0.0.1"}
    assert len(decode_history(table[b"10.0.0.0"], 3)) == 3  # T - 1
    # scores equal the offline windows of the same flows
    model = FakeModel()
    transformed = model.transform.transform_many(good)
    windows, _ = make_windows(transformed, [g["src_ip"] for g in good], np.arange(6), model.window)
    expected = model.score_windows(windows)
    assert np.allclose([v["score"] for v in verdicts], expected, atol=1e-6)
    alerts = [v["flow_id"] for _, v in topics.alerts.sent]
    assert alerts == [v["flow_id"] for v in verdicts if v["is_attack"]]
    assert scorer.stats.cumulative.flows == 6


def test_agent_in_faust_test_context() -> None:
    """The real agent (take_events batching, table, sends) under app.test_context()."""
    from stream_ids.agents import build_worker
    from stream_ids.settings import Settings

    parts = build_worker(Settings(app_id="unit-test-app"), FakeModel())
    sent: list[tuple[str, bytes | None, bytes]] = []

    async def capture(*, key=None, value=None, **_: object) -> None:
        sent.append(("?", key, value))

    for topic in (parts.topics.verdicts, parts.topics.alerts, parts.topics.dead_letter):
        topic.send = (lambda name: (lambda **kw: _record(sent, name, **kw)))(topic.get_topic_name())
    parts.scorer.table = {}  # the changelog producer is not running in a test context

    async def run() -> None:
        async with parts.agent.test_context() as agent:
            for i in range(3):
                key, value = message(flow(f"t{i}", src_ip="10.1.1.1"))
                await agent.put(value, key=key)
            await agent.put(b"", key=b"10.1.1.1")
            for _ in range(100):
                if len([s for s in sent if s[0] != parts.topics.alerts.get_topic_name()]) >= 4:
                    break
                await asyncio.sleep(0.02)

    asyncio.run(run())
    names = [name for name, _, _ in sent]
    assert names.count(parts.topics.verdicts.get_topic_name()) == 3
    assert names.count(parts.topics.dead_letter.get_topic_name()) == 1


async def _record(sent: list, name: str, *, key=None, value=None, **_: object) -> None:
    sent.append((name, key, value))


def test_batch_range_rules_go_to_dead_letter_with_reason() -> None:
    scorer, _table, topics = _scorer()
    negative, huge, good = flow("n"), flow("h"), flow("g")
    negative["features"]["total_bwd_packets"] = -1
    huge["features"]["fwd_iat_max"] = 1e200
    objs = [negative, huge, good]
    events = [event(*reversed(message(obj)), offset=i) for i, obj in enumerate(objs)]
    asyncio.run(scorer.process(events))
    assert [v["flow_id"] for _, v in topics.verdicts.sent] == ["g"]
    dead = [(v["offset"], v["reason"]) for _, v in topics.dead_letter.sent]
    assert sorted(dead) == [(0, "negative_value"), (1, "out_of_range")]
