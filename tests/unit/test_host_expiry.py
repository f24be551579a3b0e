"""Bounded per-host state: the TTL gap rule (streaming = offline), the expiry and budget
decisions (stream_ids.host_expiry) and the scoring agent that applies them."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streaming_fakes import FakeModel, event, fake_topics, flow, message

from stream_ids.host_expiry import HostIndex
from stream_ids.observability import WorkerMetrics
from stream_ids.rolling import RollingStats
from stream_ids.sequences import make_windows
from stream_ids.tables import (
    HostHistory,
    build_batch_windows,
    decode_history,
    encode_history,
    source_position,
    state_summary,
)
from stream_ids.worker.batch import BatchScorer


def test_make_windows_starts_afresh_after_a_gap_longer_than_the_ttl() -> None:
    values = np.arange(1, 6, dtype=np.float32)[:, None]
    times = [0.0, 10.0, 100.0, 105.0, 205.0]  # gaps: 10, 90, 5, 100
    windows, mask = make_windows(values, ["h"] * 5, times, 3, ttl=50.0)
    assert mask.sum(axis=1).tolist() == [1, 2, 1, 2, 1]
    assert windows[3, :, 0].tolist() == [0.0, 3.0, 4.0]
    # a gap of exactly the TTL keeps the window; no TTL: the old behaviour
    assert make_windows(values, ["h"] * 5, times, 3, ttl=100.0)[1].sum(axis=1).tolist() == [
        1, 2, 3, 3, 3,
    ]  # fmt: skip
    assert make_windows(values, ["h"] * 5, times, 3)[1].sum(axis=1).tolist() == [1, 2, 3, 3, 3]


@settings(max_examples=60, deadline=None)
@given(
    hosts=st.lists(st.sampled_from([b"a", b"b", b"c"]), min_size=1, max_size=40),
    steps=st.lists(st.sampled_from([0.0, 1.0, 30.0, 61.0, 500.0]), min_size=40, max_size=40),
    batch=st.integers(1, 9),
    window=st.integers(1, 5),
)
def test_batches_with_ttl_equal_offline_windows_with_ttl(hosts, steps, batch, window) -> None:
    """Whatever the batching, and through the byte encoding, the streamed windows are the
    offline ones under the same TTL."""
    n = len(hosts)
    values = np.arange(1, n + 1, dtype=np.float32)[:, None]
    times = np.cumsum(steps[:n])
    expected, _ = make_windows(values, [h.decode() for h in hosts], times, window, ttl=60.0)
    state: dict[bytes, HostHistory] = {}
    got = []
    for start in range(0, n, batch):
        part = slice(start, start + batch)
        result = build_batch_windows(
            values[part],
            hosts[part],
            state,
            window,
            positions=np.arange(n)[part],
            partitions=np.zeros(n, np.int64)[part],
            times=times[part],
            ttl=60.0,
        )
        got.append(result.windows)
        state.update({h: decode_history(encode_history(v), 1) for h, v in result.updated.items()})
    np.testing.assert_array_equal(np.concatenate(got), expected)


def test_state_keeps_flow_times_and_reads_the_older_format() -> None:
    history = HostHistory(
        np.ones((2, 3), np.float32), np.array([4, 9], np.int64), 5, np.array([1.5, 7.25])
    )
    raw = encode_history(history, b"t:")
    back = decode_history(raw, 3, b"t:")
    assert back.flow_times().tolist() == [1.5, 7.25] and back.partition == 5
    assert state_summary(raw, b"t:") == (5, 7.25, 9)
    assert state_summary(raw, b"other:") is None and state_summary(None) is None
    # an h2 state (before flow times): rows and positions kept, times unknown
    v2 = b"t:h2" + raw[len(b"t:h3") : len(b"t:h3") + 8 + 16] + history.rows.tobytes()
    old = decode_history(v2, 3, b"t:")
    assert old.positions.tolist() == [4, 9] and np.isnan(old.flow_times()).all()
    partition, newest, position = state_summary(v2, b"t:")
    assert (partition, position) == (5, 9) and np.isnan(newest)


def test_index_expires_idle_committed_hosts_by_partition_flow_clock() -> None:
    index = HostIndex()
    index.touch(b"old", 0, 100.0, source_position(5))
    index.touch(b"uncommitted", 0, 100.0, source_position(50))
    index.touch(b"recent", 0, 950.0, source_position(6))
    index.touch(b"other-partition", 1, 100.0, source_position(1))
    index.touch(b"unknown-time", 0, float("nan"), source_position(1))
    index.advance(np.array([0, 0, 1]), np.array([1000.0, 990.0, 120.0]))
    assert index.clocks == {0: 1000.0, 1: 120.0}
    committed = {0: source_position(10), 1: source_position(10)}
    assert index.expired(600.0, committed) == [b"old"]
    assert not index.sweep_due(600.0)  # just swept
    index.advance(np.array([0]), np.array([1100.0]))
    assert not index.sweep_due(600.0)  # 100 s < TTL / 4
    index.advance(np.array([0]), np.array([1200.0]))
    assert index.sweep_due(600.0)
    # a partition without a known committed offset expires nothing
    assert index.expired(600.0, {}) == []


def test_index_budget_evicts_the_least_recently_seen_of_owned_partitions() -> None:
    index = HostIndex()
    for i in range(6):
        index.touch(f"h{i}".encode(), i % 2, float(i), i)
    index.touch(b"h0", 0, 10.0, 10)  # seen again: now the most recent
    assert index.over_budget(6) == []
    assert index.over_budget(3) == [b"h1", b"h2", b"h3"]
    assert index.over_budget(3, partitions={0}) == [b"h2", b"h4", b"h0"]
    index.forget([b"h1", b"h2"])
    assert len(index) == 4


def _flood_scorer(**options) -> tuple[BatchScorer, dict, object, WorkerMetrics]:
    from prometheus_client import CollectorRegistry

    topics = fake_topics()
    table: dict[bytes, bytes] = {}
    metrics = WorkerMetrics(CollectorRegistry())
    committed = {0: 10**9}  # everything committed: expiry may drop any idle host
    scorer = BatchScorer(
        FakeModel(),
        table,
        topics,
        RollingStats("w"),
        metrics=metrics,
        committed_offsets=lambda: committed,
        **options,
    )
    return scorer, table, topics, metrics


def _flood(scorer: BatchScorer, hosts: int, per_batch: int, seconds_per_flow: float) -> None:
    for start in range(0, hosts, per_batch):
        events = []
        for i in range(start, min(hosts, start + per_batch)):
            key, value = message(
                flow(f"f{i}", src_ip=f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}",
                     timestamp=1_000.0 + i * seconds_per_flow)
            )  # fmt: skip
            events.append(event(value, key, offset=i))
        asyncio.run(scorer.process(events))


def test_spoofed_source_flood_keeps_host_state_bounded_by_the_ttl() -> None:
    # 3,000 distinct sources over 300 s of flow time, TTL 20 s: ~200 live hosts at a time
    scorer, table, topics, metrics = _flood_scorer(host_ttl_s=20.0)
    _flood(scorer, 3000, per_batch=50, seconds_per_flow=0.1)
    verdicts = [v["flow_id"] for _, v in topics.verdicts.sent]
    assert sorted(verdicts) == sorted(f"f{i}" for i in range(3000))  # one verdict per flow
    # at most TTL * (1 + sweep fraction) of flow time, plus a batch, stays in state
    assert len(table) <= (20.0 * 1.25) / 0.1 + 50
    assert len(scorer.host_state.hosts) == len(table)
    assert scorer.host_state.hosts_expired == 3000 - len(table)
    assert metrics.registry.get_sample_value("stream_ids_hosts_in_state") == len(table)
    assert metrics.registry.get_sample_value("stream_ids_hosts_expired_total") == (
        scorer.host_state.hosts_expired
    )
    # the hosts kept are the newest ones
    assert b"10.0.11.183" in table and b"10.0.0.0" not in table  # 2999 is 11 * 256 + 183


def test_host_budget_evicts_least_recently_seen_and_never_loses_a_flow() -> None:
    scorer, table, topics, metrics = _flood_scorer(max_hosts=100)
    _flood(scorer, 1000, per_batch=40, seconds_per_flow=0.0)
    assert len(table) == 100 and scorer.host_state.hosts_evicted == 900
    assert len(topics.verdicts.sent) == 1000
    assert metrics.registry.get_sample_value("stream_ids_hosts_evicted_total") == 900
    # a host seen again after its eviction starts a fresh window, as a new host
    key, value = message(flow("again", src_ip="10.0.0.0", timestamp=2_000.0))
    asyncio.run(scorer.process([event(value, key, offset=5000)]))
    assert topics.verdicts.sent[-1][1]["window_length"] == 1


def test_after_a_rebalance_only_the_hosts_of_scored_partitions_count() -> None:
    scored: list[set[int] | None] = [None]  # before an assignment: every host counts
    scorer, table, topics, metrics = _flood_scorer(
        max_hosts=25, assigned_partitions=lambda: scored[0]
    )
    hosts = {p: [f"10.0.{p}.{i}" for i in range(10)] for p in range(4)}  # 10 per partition
    events = []
    for p, sources in hosts.items():
        for i, source in enumerate(sources):
            key, value = message(flow(f"f{p}-{i}", src_ip=source, timestamp=1_000.0 + i))
            events.append(event(value, key, offset=i, partition=p))
    scorer.host_state.max_hosts = None  # all 40 in state first
    asyncio.run(scorer.process(events))
    assert len(scorer.host_state.hosts) == len(table) == 40
    # a rebalance (a scale-out): this worker goes on scoring partitions 0 and 1 only; the
    # index is rebuilt at the next batch boundary
    scorer.host_state.max_hosts = 25
    scored[0] = {0, 1}
    scorer.host_state.reassigned()
    key, value = message(flow("next", src_ip=hosts[0][0], timestamp=1_100.0))
    # and a flow of partition 3 from a batch taken before the assignment: scored, not counted
    late_key, late_value = message(flow("late", src_ip="10.0.3.99", timestamp=1_050.0))
    asyncio.run(
        scorer.process(
            [event(value, key, offset=10, partition=0), event(late_value, late_key, 10, 3)]
        )
    )
    # only the 20 scored hosts count: under the budget of 25, nobody is evicted (the 21 other
    # states, standby copies or lost partitions' states, stay in memory uncounted)
    assert len(scorer.host_state.hosts) == 20 and scorer.host_state.hosts_evicted == 0
    assert metrics.registry.get_sample_value("stream_ids_hosts_in_state") == 20
    assert len(table) == 41
    assert len(topics.verdicts.sent) == 42  # every flow one verdict


def test_assigned_partitions_reads_the_flows_topic_from_fausts_assignor() -> None:
    from types import SimpleNamespace

    from faust.types import TP

    from stream_ids.tables import AssignedPartitions

    actives: set[TP] = set()
    standbys: set[TP] = set()
    app = SimpleNamespace(
        assignor=SimpleNamespace(
            assigned_actives=lambda: set(actives), assigned_standbys=lambda: set(standbys)
        )
    )
    assigned = AssignedPartitions(app, "flows")
    assert assigned() is None  # no assignment yet
    standbys.update({TP("app-host-windows-changelog", 2)})
    assert assigned() == set()  # only a standby replica here: no host of its own
    actives.update({TP("flows", 0), TP("flows", 1), TP("app-host-windows-changelog", 0)})
    actives.add(TP("other", 5))
    assert assigned() == {0, 1}


@pytest.mark.parametrize("ttl", [None, 1e9])
def test_without_expiry_every_host_stays(ttl) -> None:
    scorer, table, _topics, _ = _flood_scorer(host_ttl_s=ttl)
    _flood(scorer, 500, per_batch=50, seconds_per_flow=10.0)
    assert len(table) == 500 and scorer.host_state.hosts_expired == 0


def test_worker_and_offline_default_ttl_agree() -> None:
    from stream_ids.sequences import DEFAULT_HOST_TTL_S
    from stream_ids.settings import Settings

    assert Settings().host_ttl_s == DEFAULT_HOST_TTL_S


class _Builder:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, timestamp, key, value):
        self.records.append((key, value))
        return object()  # not full


class _Producer:
    """The aiokafka producer calls StateWriter makes: record batches per partition."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []

        async def wait_on_metadata(_topic: str) -> None:
            return None

        self.client = type("Client", (), {"_wait_on_metadata": staticmethod(wait_on_metadata)})

    def create_batch(self) -> _Builder:
        return _Builder()

    async def send_batch(self, builder: _Builder, topic: str, partition: int):
        self.batches.append((topic, partition, builder.records))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def _partition(self, topic, partition, key, value, serialized_key, serialized_value):
        return 7  # "murmur2" of every key, for a state whose partition is unknown


class _FaustLikeTable(dict):
    """What StateWriter reads of a Faust in-memory table: ``data.data`` (the store's dict),
    ``app`` (transactions, producer) and ``changelog_topic``; ``table[key] = v`` and ``del``
    (Faust's per-key path, with its changelog record) are recorded."""

    def __init__(self, producer: _Producer | None, in_transaction: bool = False) -> None:
        super().__init__()
        self.data = type("Store", (), {})()
        self.data.data = {}
        self.faust_path: list[tuple[bytes, bytes | None]] = []
        self.app = type("App", (), {})()
        self.app.in_transaction = in_transaction
        self.app.producer = type("ThreadedProducer", (), {})()
        self.app.producer._producer = producer
        self.changelog_topic = type("Topic", (), {"get_topic_name": lambda _self: "c"})()

    def __setitem__(self, key, value) -> None:
        self.faust_path.append((key, value))
        self.data.data[key] = value

    def __delitem__(self, key) -> None:
        self.faust_path.append((key, None))
        del self.data.data[key]

    def __contains__(self, key) -> bool:
        return key in self.data.data


def test_state_writer_sends_states_and_tombstones_as_record_batches_per_partition() -> None:
    from stream_ids.faust_fixes import StateWriter

    producer = _Producer()
    table = _FaustLikeTable(producer)
    writer = StateWriter(table)
    records = [(b"a", b"1", 0), (b"b", b"2", 3), (b"c", b"3", -1), (b"a", b"4", 0)]
    asyncio.run(writer.write(records))
    assert table.data.data == {b"a": b"4", b"b": b"2", b"c": b"3"}
    assert table.faust_path == []  # nothing through Faust's per-key send
    sent = {partition: recs for _topic, partition, recs in producer.batches}
    assert sent == {0: [(b"a", b"1"), (b"a", b"4")], 3: [(b"b", b"2")], 7: [(b"c", b"3")]}
    assert {topic for topic, _p, _r in producer.batches} == {"c"}
    # deletions: a tombstone for a key in the table only, in order after the states
    producer.batches.clear()
    asyncio.run(writer.write([(b"d", b"5", 1), (b"a", None, 0), (b"zz", None, 0)]))
    assert table.data.data == {b"b": b"2", b"c": b"3", b"d": b"5"}
    assert sorted((p, r) for _t, p, r in producer.batches) == [
        (0, [(b"a", None)]),
        (1, [(b"d", b"5")]),
    ]


@pytest.mark.parametrize("in_transaction", [True, False])
def test_state_writer_keeps_fausts_path_under_transactions_or_without_a_producer(
    in_transaction,
) -> None:
    from stream_ids.faust_fixes import StateWriter

    producer = _Producer() if in_transaction else None  # not started yet: Faust's path
    table = _FaustLikeTable(producer, in_transaction=in_transaction)
    asyncio.run(StateWriter(table).write([(b"a", b"1", 0), (b"a", None, 0), (b"b", b"2", 0)]))
    assert table.faust_path == [(b"a", b"1"), (b"a", None), (b"b", b"2")]
    assert producer is None or producer.batches == []


def test_flood_through_the_scorer_writes_one_state_and_one_tombstone_per_source() -> None:
    producer = _Producer()
    table = _FaustLikeTable(producer)
    scorer, _table, topics, _metrics = _flood_scorer(host_ttl_s=20.0)
    scorer.table = table
    from stream_ids.faust_fixes import StateWriter

    scorer.host_state.writer = StateWriter(table)
    _flood(scorer, 2000, per_batch=100, seconds_per_flow=0.1)
    assert len(topics.verdicts.sent) == 2000
    records = [r for _t, _p, recs in producer.batches for r in recs]
    states = [k for k, v in records if v is not None]
    tombstones = [k for k, v in records if v is None]
    assert len(states) == 2000 and len(set(states)) == 2000
    assert len(tombstones) == scorer.host_state.hosts_expired > 0
    assert set(table.data.data) == set(states) - set(tombstones)
    assert len(scorer.host_state.hosts) == len(table.data.data)
    # every record went to the partition its flow came from (event(): partition 0)
    assert {p for _t, p, _r in producer.batches} == {0}


def test_restore_counter_counts_active_changelog_records_since_the_assignment() -> None:
    from stream_ids.tables import RestoreCounter

    applied: list[int] = []

    class Table:
        def apply_changelog_batch(self, batch) -> None:
            applied.append(len(batch))

    table = Table()
    table.app = type("App", (), {})()
    table.app.tables = type("Tables", (), {})()
    table.app.tables.recovery = type("Recovery", (), {"active_tps": {"c0", "c1"}})()
    counter = RestoreCounter(table, clock=lambda: 12.5)

    def events(*tps: str) -> list:
        return [type("Event", (), {"message": type("M", (), {"tp": tp})()})() for tp in tps]

    table.apply_changelog_batch(events("c0", "c1", "c1", "standby"))
    assert counter.records == 3 and applied == [4]  # all applied, the standby one not counted
    counter.recovered()
    assert counter.recovered_at == 12.5
    counter.reset()
    assert counter.records == 0 and counter.recovered_at is None
