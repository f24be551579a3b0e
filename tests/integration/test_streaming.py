"""The streaming path end to end: replay -> Kafka -> real worker subprocesses -> outputs.

Acceptance (the streaming issue): (a) 20,000 shared flows through one worker give exactly
20,000 verdicts, each flow id once; (b) streamed scores equal offline `Scorer.score_frame` within
1e-5, per-host windows included; (c) two workers over 8 partitions: every verdict arrives and each
host is scored with its own history only; (d) bad records interleaved with good ones: one verdict
per good record, one dead letter (with its reason) per bad one, the worker stays up; (e) the
cumulative confusion counts on `stats` equal those computed from `verdicts`.
"""

from __future__ import annotations

import base64
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
from streaming_harness import Stream

from producers.replay import load_replay_frame, producer_config, replay
from stream_ids.datasets import improved_csvs
from stream_ids.schema import is_benign_label

pytestmark = pytest.mark.integration

N_FLOWS = 20_000


@pytest.fixture(scope="module")
def shared_frame():
    return load_replay_frame(improved_csvs(), limit=N_FLOWS)


@pytest.fixture(scope="module")
def scorer():
    from stream_ids.scorer import Scorer

    return Scorer.load()


@pytest.fixture(scope="module", params=[1, 32], ids=["schema1", "schema3-host-batch"])
def one_worker_run(request, kafka_bootstrap, shared_frame, tmp_path_factory):
    """One worker, 20,000 shared flows replayed (a, b and e read its outputs): one flow per
    record (schema 1), then host micro-batches by columns (schema 3, `replay --host-batch`)."""
    stream = Stream(kafka_bootstrap, tmp_path_factory.mktemp("one-worker"))
    stream.create_topics()
    stream.start_worker("w1")
    try:
        result = replay(
            [],
            stream.settings,
            frame=shared_frame,
            id_prefix="a",
            progress=False,
            host_batch=request.param,
        )
        assert result.failed == 0 and result.delivered == N_FLOWS
        verdicts = stream.collect(stream.settings.topic_verdicts, N_FLOWS)
        # let duplicates (if any) and the final stats arrive
        deadline = time.monotonic() + 30
        cumulative = None
        while time.monotonic() < deadline:
            records = [v for _, v in stream.read_all(stream.settings.topic_stats)]
            final = [r for r in records if r["window"] == "cumulative" and r["flows"] >= N_FLOWS]
            if final:
                cumulative = final[-1]
                break
            time.sleep(1)
        verdicts = [v for _, v in stream.read_all(stream.settings.topic_verdicts)]
        alerts = [v for _, v in stream.read_all(stream.settings.topic_alerts)]
        assert stream.alive(), stream.diagnostics()
        yield {"verdicts": verdicts, "alerts": alerts, "cumulative": cumulative, "stream": stream}
    finally:
        stream.stop()


def _row(flow_id: str) -> int:
    return int(flow_id.rsplit("-", 1)[1])


def _host_positions(frame) -> np.ndarray:
    """Each flow's position in its host's run of flows (1 = first): a run ends at a gap of
    flow time longer than the host TTL (the frame is in timestamp order)."""
    from stream_ids.sequences import DEFAULT_HOST_TTL_S

    gap = frame.groupby("src_ip", sort=False)["timestamp"].diff() > DEFAULT_HOST_TTL_S
    run = gap.groupby(frame["src_ip"], sort=False).cumsum()
    return frame.groupby([frame["src_ip"], run], sort=False).cumcount().to_numpy() + 1


def test_a_every_flow_gets_exactly_one_verdict(one_worker_run):
    ids = Counter(v["flow_id"] for v in one_worker_run["verdicts"])
    assert len(ids) == N_FLOWS
    assert max(ids.values()) == 1, [i for i, c in ids.items() if c > 1][:5]
    assert {_row(i) for i in ids} == set(range(N_FLOWS))
    alert_ids = {a["flow_id"] for a in one_worker_run["alerts"]}
    assert alert_ids == {v["flow_id"] for v in one_worker_run["verdicts"] if v["is_attack"]}


def test_b_stream_scores_equal_offline_scores(one_worker_run, shared_frame, scorer):
    expected = scorer.score_frame(shared_frame)
    verdicts = sorted(one_worker_run["verdicts"], key=lambda v: _row(v["flow_id"]))
    got = np.array([v["score"] for v in verdicts], dtype=np.float64)
    assert np.abs(got - expected).max() <= 1e-5
    # the window lengths are the per-host positions (capped at T; a host silent longer than
    # the host TTL starts again at 1)
    position = _host_positions(shared_frame)
    lengths = np.array([v["window_length"] for v in verdicts])
    assert np.array_equal(lengths, np.minimum(position, scorer.window))
    assert all(v["model_version"] == scorer.model_version for v in verdicts[:10])


def test_e_cumulative_stats_equal_counts_from_verdicts(one_worker_run):
    cumulative = one_worker_run["cumulative"]
    assert cumulative is not None, "no cumulative stats covering every flow"
    verdicts = one_worker_run["verdicts"]
    counts = Counter()
    for v in verdicts:
        truth = not is_benign_label(v["label"])
        if truth:
            counts["tp" if v["is_attack"] else "fn"] += 1
        else:
            counts["fp" if v["is_attack"] else "tn"] += 1
    assert cumulative["flows"] == len(verdicts)
    assert cumulative["alerts"] == sum(v["is_attack"] for v in verdicts)
    for name in ("tp", "fp", "tn", "fn"):
        assert cumulative[name] == counts[name], name
    far = counts["fp"] / (counts["fp"] + counts["tn"])
    assert math.isclose(cumulative["false_alarm_rate"], far)
    assert math.isclose(cumulative["precision"], counts["tp"] / (counts["tp"] + counts["fp"]))
    assert math.isclose(cumulative["recall"], counts["tp"] / (counts["tp"] + counts["fn"]))


def test_c_two_workers_share_partitions_and_keep_per_host_history(
    kafka_bootstrap, shared_frame, scorer, tmp_path: Path
):
    frame = shared_frame.iloc[:6000].reset_index(drop=True)
    stream = Stream(kafka_bootstrap, tmp_path, partitions=8)
    stream.create_topics()
    stream.start_worker("c1")
    stream.start_worker("c2")
    try:
        stream.wait_ready()
        time.sleep(5)  # both members joined: the group is stable before the flows come
        result = replay([], stream.settings, frame=frame, id_prefix="c", progress=False)
        assert result.delivered == len(frame)
        stream.collect(stream.settings.topic_verdicts, len(frame))
        time.sleep(3)
        verdicts = [v for _, v in stream.read_all(stream.settings.topic_verdicts)]
        stats = [v for _, v in stream.read_all(stream.settings.topic_stats)]
        assert stream.alive(), stream.diagnostics()
    finally:
        stream.stop()
    ids = Counter(v["flow_id"] for v in verdicts)
    assert len(ids) == len(frame) and max(ids.values()) == 1
    # both workers scored flows
    workers = {r["worker"] for r in stats if r["window"] == "cumulative" and r["flows"] > 0}
    assert workers == {"c1", "c2"}, workers
    verdicts.sort(key=lambda v: _row(v["flow_id"]))
    position = _host_positions(frame)
    assert np.array_equal([v["window_length"] for v in verdicts],
                          np.minimum(position, scorer.window))
    expected = scorer.score_frame(frame)
    assert np.abs(np.array([v["score"] for v in verdicts]) - expected).max() <= 1e-5


def _bad_records(good: dict) -> list[tuple[str, bytes | None, bytes]]:
    """(expected reason, key, value) of every bad kind."""
    key = good["src_ip"].encode()

    def variant(**changes) -> bytes:
        obj = orjson.loads(orjson.dumps(good))
        for name, value in changes.items():
            if name.startswith("f_"):
                obj["features"][name[2:]] = value
            elif value is ...:
                del obj[name]
            else:
                obj[name] = value
        return orjson.dumps(obj)

    text = orjson.dumps(good)
    missing_feature = orjson.loads(text)
    del missing_feature["features"]["flow_iat_max"]
    return [
        ("invalid_json", key, text[: len(text) // 2]),
        ("invalid_json", key, text.replace(b'"flow_duration":', b'"flow_duration":NaN,"x":', 1)),
        ("missing_field", key, variant(flow_id=...)),
        ("missing_field", key, orjson.dumps(missing_feature)),
        ("wrong_type", key, variant(f_total_fwd_packets="12")),
        ("wrong_type", key, variant(dst_port=[80])),
        ("non_finite", key, variant(f_flow_iat_mean="Infinity")),
        ("non_finite", key, variant(f_fwd_packet_length_max=None)),
        ("negative_value", key, variant(f_total_bwd_packets=-4)),
        ("out_of_range", key, variant(f_flow_duration=1e300)),
        ("out_of_range", key, variant(dst_port=99999)),
        ("empty", key, b""),
        ("not_an_object", key, b"[1, 2, 3]"),
        ("unsupported_schema", key, variant(schema=7)),
        ("key_mismatch", b"203.0.113.9", text),
        ("key_mismatch", None, text),
    ]


def test_d_bad_records_go_to_dead_letter_and_worker_stays_up(
    kafka_bootstrap, shared_frame, tmp_path: Path
):
    from confluent_kafka import Producer

    from producers.replay import flow_object, prepare

    frame = shared_frame.iloc[:2000].reset_index(drop=True)
    prepared = prepare(frame)
    stream = Stream(kafka_bootstrap, tmp_path, partitions=4)
    stream.create_topics()
    stream.start_worker("d1")
    producer = Producer(producer_config(stream.settings))
    now = time.time()
    expected_reasons: Counter = Counter()
    good_ids = []
    n_bad = 0
    try:
        for index in range(prepared.n):
            good = flow_object(prepared, index, f"d-0-{index}", 0.0, now)
            producer.produce(stream.settings.topic_flows, key=good["src_ip"].encode(),
                             value=orjson.dumps(good))
            good_ids.append(good["flow_id"])
            if index % 2 == 0:
                kinds = _bad_records(good)
                reason, key, value = kinds[(index // 2) % len(kinds)]
                value = value.replace(good["flow_id"].encode(), f"bad-{index}".encode())
                producer.produce(stream.settings.topic_flows, key=key, value=value)
                expected_reasons[reason] += 1
                n_bad += 1
            producer.poll(0)
        assert producer.flush(60) == 0
        assert n_bad == 1000
        verdicts = stream.collect(stream.settings.topic_verdicts, len(good_ids))
        dead = stream.collect(stream.settings.topic_dead_letter, n_bad, timeout=60)
        time.sleep(3)
        verdicts = [v for _, v in stream.read_all(stream.settings.topic_verdicts)]
        dead = [v for _, v in stream.read_all(stream.settings.topic_dead_letter)]
        assert stream.alive(), stream.diagnostics()
    finally:
        stream.stop()
    assert sorted(v["flow_id"] for v in verdicts) == sorted(good_ids)
    assert len(dead) == n_bad
    assert Counter(d["reason"] for d in dead) == expected_reasons
    for record in dead[:50]:
        base64.b64decode(record["raw"])  # the raw bytes travel
        assert record["topic"] == stream.settings.topic_flows and record["offset"] >= 0
