"""Window state across batches, rolling statistics, and the scoring agent's per-batch work."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streaming_fakes import FakeModel, event, fake_topics, flow, message

from stream_ids.rolling import Counts, RollingStats
from stream_ids.sequences import make_windows
from stream_ids.tables import (
    HOSTLESS_KEY,
    MAX_KEPT,
    RESERVE,
    HostHistory,
    build_batch_windows,
    decode_history,
    encode_history,
    source_position,
)
from stream_ids.worker.batch import BatchScorer


def test_history_bytes_round_trip() -> None:
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    history = HostHistory(rows, np.array([5, 9, 1 << 40, 7 << 20], dtype=np.int64), 3)
    back = decode_history(encode_history(history, b"tag:"), 3, b"tag:")
    assert np.array_equal(back.rows, rows) and back.partition == 3
    assert back.positions.tolist() == history.positions.tolist()
    assert len(decode_history(None, 3)) == 0
    assert len(decode_history(b"\x00" * 8, 3)) == 0  # not our format: start afresh
    assert len(decode_history(encode_history(history, b"tag:"), 3, b"other:")) == 0
    assert len(decode_history(encode_history(history), 4)) == 0  # another width
    assert len(decode_history(encode_history(history)[:-1], 3)) == 0  # truncated


@pytest.mark.parametrize("batch_size", [1, 3, 7, 50])
def test_batches_equal_offline_windows(batch_size: int) -> None:
    rng = np.random.default_rng(0)
    n, window = 50, 4
    values = rng.random((n, 3), dtype=np.float32) + 0.01
    hosts = [rng.choice([b"a", b"b", b"c"]) for _ in range(n)]
    expected, mask = make_windows(values, [h.decode() for h in hosts], np.arange(n), window)
    state: dict[bytes, HostHistory] = {}
    got, lengths = [], []
    for start in range(0, n, batch_size):
        w, length, updated, redelivered = build_batch_windows(
            values[start : start + batch_size], hosts[start : start + batch_size], state, window
        )
        assert redelivered == 0
        state.update({h: decode_history(encode_history(v), 3) for h, v in updated.items()})
        got.append(w)
        lengths.append(length)
    assert np.array_equal(np.concatenate(got), expected)
    assert np.array_equal(np.concatenate(lengths), mask.sum(axis=1))
    assert all(len(v) <= window - 1 + RESERVE for v in state.values())


def _stream(values, hosts, window, batches, state, committed=None):
    """Score ``batches`` (lists of flow indices, positions = index) through ``state``."""
    windows = {}
    redelivered = 0
    for batch in batches:
        result = build_batch_windows(
            values[batch],
            [hosts[i] for i in batch],
            state,
            window,
            positions=[source_position(i) for i in batch],
            partitions=[0] * len(batch),
            committed=None if committed is None else {0: committed(batch)},
        )
        state.update({h: decode_history(encode_history(v), 3) for h, v in result.updated.items()})
        redelivered += result.redelivered
        for row, index in enumerate(batch):
            windows.setdefault(index, []).append(result.windows[row])
    return windows, redelivered


@pytest.mark.parametrize("with_committed", [False, True])
def test_redelivered_flows_get_their_first_windows_and_the_sequence_continues(
    with_committed: bool,
) -> None:
    """A crash after the changelog was written but before the offsets were committed."""
    rng = np.random.default_rng(1)
    n, window, batch_size = 400, 5, 40
    values = rng.random((n, 3), dtype=np.float32) + 0.01
    hosts = [rng.choice([b"a", b"b", b"c", b"d"]) for _ in range(n)]
    expected, _ = make_windows(values, [h.decode() for h in hosts], np.arange(n), window)
    batches = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
    # committed offset seen while scoring batch k: the start of batch k - 1 (commits lag)
    committed = (lambda batch: max(0, batch[0] - batch_size)) if with_committed else None
    state: dict[bytes, HostHistory] = {}
    first, _ = _stream(values, hosts, window, batches[:6], state, committed)
    # crash: the changelog holds batches 0-5, the offsets were committed up to batch 4's start
    restored = {h: decode_history(encode_history(v), 3) for h, v in state.items()}
    again, redelivered = _stream(values, hosts, window, batches[4:], restored, committed)
    assert redelivered == 2 * batch_size  # batches 4 and 5 were already in the state
    for index in range(n):
        for seen in first.get(index, []) + again.get(index, []):
            assert np.array_equal(seen, expected[index]), index
    if with_committed:  # only the uncommitted rows (and T - 1 before them) are kept
        assert max(len(v) for v in restored.values()) <= window - 1 + 2 * batch_size


def test_redelivery_beyond_the_kept_rows_shortens_windows_only() -> None:
    """More redelivered flows of one host than :data:`MAX_KEPT`: windows start shorter."""
    n, window = MAX_KEPT + 50, 3
    values = np.arange(1, n + 1, dtype=np.float32)[:, None].repeat(3, axis=1)
    hosts = [b"busy"] * n
    state: dict[bytes, HostHistory] = {}
    nothing_committed = lambda batch: 0  # noqa: E731 - a one-line stand-in for the consumer
    _stream(values, hosts, window, [list(range(n))], state, nothing_committed)
    assert len(state[b"busy"]) == MAX_KEPT  # flows 50 .. n-1
    again, redelivered = _stream(values, hosts, window, [list(range(10, n))], state)
    assert redelivered == MAX_KEPT
    expected, _ = make_windows(values, ["busy"] * n, np.arange(n), window)
    # flows 10 and 11 lost their older context (9 and 8 were dropped); the rest are whole
    assert again[10][0][:2].sum() == 0 and again[11][0][0].sum() == 0
    assert all(np.array_equal(again[i][0], expected[i]) for i in range(12, n))


def test_hostless_flows_keep_no_history() -> None:
    values = np.ones((3, 2), dtype=np.float32)
    windows, lengths, updated, _ = build_batch_windows(values, [HOSTLESS_KEY] * 3, {}, 3)
    assert lengths.tolist() == [1, 1, 1] and updated == {}
    assert not windows[:, :2].any()


def test_counts_and_derived_rates() -> None:
    counts = Counts.of([True, True, False, False, True], [True, False, False, True, None])
    assert (counts.tp, counts.fp, counts.tn, counts.fn, counts.labelled) == (1, 1, 1, 1, 4)
    record = counts.record("w", "cumulative", 0, 1, 1)
    assert record["flows"] == 5 and record["alerts"] == 3
    assert record["false_alarm_rate"] == 0.5 and record["precision"] == 0.5
    assert record["recall"] == 0.5


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(), st.sampled_from([None, "BENIGN", " benign ", "DDoS", "PortScan"])
        ),
        max_size=40,
    )
)
def test_batch_counts_equal_per_flow_counts(flows) -> None:
    """What the agent's publish counts with numpy = the per-flow rule."""
    from stream_ids.schema import is_benign_label
    from stream_ids.worker.publish import label_truth

    predicted = [guess for guess, _ in flows]
    labels = [label for _, label in flows]
    expected = Counts(flows=len(flows), alerts=sum(predicted))
    for guess, label in flows:
        if label is None:
            continue
        expected.labelled += 1
        cells = {(True, True): "tp", (True, False): "fn", (False, True): "fp", (False, False): "tn"}
        field = cells[(not is_benign_label(label), guess)]  # (attack, alerted)
        setattr(expected, field, getattr(expected, field) + 1)
    labelled, attack = label_truth(labels)
    assert Counts.of_arrays(np.array(predicted, dtype=bool), attack, labelled) == expected


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
    # T - 1 rows plus the reserve for redelivery (no committed offsets known here)
    assert len(decode_history(table[b"10.0.0.0"], 3)) == 3
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
    assert parts.scorer.holes is not None
    parts.scorer.holes.lookup_committed = None  # no broker to ask for committed offsets

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


def _reference_windows(values, hosts, histories, window):
    """Windows the straightforward way, one flow at a time (the old per-flow loop)."""
    seen = {host: list(h.rows[max(0, len(h) - (window - 1)) :]) for host, h in histories.items()}
    windows = np.zeros((len(values), window, values.shape[1]), dtype=np.float32)
    lengths = np.zeros(len(values), dtype=np.int32)
    for index, (row, host) in enumerate(zip(values, hosts, strict=True)):
        earlier = [] if host == HOSTLESS_KEY or window == 1 else seen.setdefault(host, [])
        part = [*earlier, row][-window:]
        windows[index, window - len(part) :] = part
        lengths[index] = len(part)
        if host != HOSTLESS_KEY and window > 1:
            earlier.append(row)
    return windows, lengths


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 6),
    hosts=st.lists(st.sampled_from([b"a", b"b", b"c", HOSTLESS_KEY]), min_size=0, max_size=40),
    stored=st.dictionaries(st.sampled_from([b"a", b"b"]), st.integers(0, 9), max_size=2),
)
def test_vectorised_windows_equal_per_flow_loop(window, hosts, stored) -> None:
    rng = np.random.default_rng(len(hosts) * 7 + window)
    values = rng.random((len(hosts), 3), dtype=np.float32) + 0.01
    histories = {
        host: HostHistory.of(rng.random((count, 3), dtype=np.float32) + 0.01)
        for host, count in stored.items()
    }
    result = build_batch_windows(values, hosts, histories, window)
    expected, lengths = _reference_windows(values, hosts, histories, window)
    assert result.windows.shape == (len(hosts), window, 3)
    assert np.array_equal(result.windows, expected)
    assert np.array_equal(result.lengths, lengths)
