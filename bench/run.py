# ruff: noqa: S603, S108  (benchmark: runs our own commands, uses /tmp/perf-broker as asked)
"""The stream-ids benchmark: transport ceiling, scorer alone, whole pipeline (1 and 2 workers).

    python bench/run.py [--flows 500000] [--bootstrap HOST:PORT] [--host-batch 32]
        [--workers 1 2] [--latency-seconds 20] [--json PATH] [--skip ...] [--profile PATH]

Without ``--bootstrap`` it starts the local broker (``stream-ids broker``, port 49092, data in
``/tmp/perf-broker``) and stops it at the end. Every run uses fresh topics and a fresh group.

1. **passthrough**: the same records (``replay --loop``, host micro-batches) consumed and produced
   again by a plain confluent-kafka loop (no parsing, no scoring), running while the replay
   produces; flows/s from the first produced record to the last one re-delivered.
2. **scorer alone**: samples/s of the serving scorer at batch 1, 64, 512 and 4096 on real windows
   of the shared rows (the whole Keras model, and the split encoder + head path the worker uses).
3. **pipeline**: ``stream-ids worker`` subprocesses (same consumer group), then ``replay --max``
   of ``--flows`` flows; flows/s from the first ``produced_at`` to the last ``scored_at``. Then a
   fresh deployment at a fixed offered rate of half that for ``--latency-seconds``: produce ->
   verdict latency (the verdict's Kafka timestamp minus the flow's ``produced_at``) p50/p95/p99.
4. the same with two workers.
5. **host flood** (#18): one worker on a backlog of ``--host-flood-flows`` flows from 16 sources
   (the usual traffic), then another on as many flows each from a different source (a
   spoofed-source flood), both over 600 s of flow time with ``STREAM_IDS_HOST_TTL_S=60``:
   throughput and worker RSS growth of each, and the flood's throughput as a share of the usual
   (``bench/host_flood.py``, which also times a restart after SIGKILL, has the details).

Prints one rich table, writes ``--json`` and a PNG beside it (latency CDF, throughput bars).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCHES = (1, 64, 512, 4096)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- machine --------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "load_avg_at_start": list(os.getloadavg()),
    }


# -- deployments ----------------------------------------------------------------------------------
class Deployment:
    """Fresh topics + consumer group; workers are `stream-ids worker` subprocesses."""

    def __init__(
        self, bootstrap: str, tmp: Path, partitions: int, extra_env: dict[str, str]
    ) -> None:
        from stream_ids.settings import Settings

        tag = uuid.uuid4().hex[:8]
        self.tag, self.tmp = tag, tmp
        names = {
            "STREAM_IDS_BOOTSTRAP_SERVERS": bootstrap,
            "STREAM_IDS_TOPIC_FLOWS": f"bench-flows-{tag}",
            "STREAM_IDS_TOPIC_VERDICTS": f"bench-verdicts-{tag}",
            "STREAM_IDS_TOPIC_ALERTS": f"bench-alerts-{tag}",
            "STREAM_IDS_TOPIC_STATS": f"bench-stats-{tag}",
            "STREAM_IDS_TOPIC_DEAD_LETTER": f"bench-dlq-{tag}",
            "STREAM_IDS_APP_ID": f"bench-{tag}",
            "STREAM_IDS_TOPIC_PARTITIONS": str(partitions),
        }
        self.env = dict(os.environ)
        self.env.update(names)
        self.env.update(
            {
                "STREAM_IDS_METRICS_PORT": "0",
                "STREAM_IDS_DATA_DIR": str(tmp / f"faust-{tag}"),
                "PYTHONPATH": str(REPO),
                "TF_CPP_MIN_LOG_LEVEL": "3",
            }
        )
        self.env.update(extra_env)
        self.settings = Settings(
            bootstrap_servers=bootstrap,
            topic_flows=names["STREAM_IDS_TOPIC_FLOWS"],
            topic_verdicts=names["STREAM_IDS_TOPIC_VERDICTS"],
            topic_alerts=names["STREAM_IDS_TOPIC_ALERTS"],
            topic_stats=names["STREAM_IDS_TOPIC_STATS"],
            topic_dead_letter=names["STREAM_IDS_TOPIC_DEAD_LETTER"],
            app_id=names["STREAM_IDS_APP_ID"],
            topic_partitions=partitions,
        )
        self.workers: list[tuple[subprocess.Popen, Path]] = []

    def create_topics(self) -> None:
        from producers.replay import ensure_topic

        s = self.settings
        for topic in (s.topic_flows, s.topic_verdicts, s.topic_alerts, s.topic_dead_letter):
            ensure_topic(s, topic)
        ensure_topic(s, s.topic_stats, partitions=1)

    def start_workers(self, count: int) -> None:
        for index in range(count):
            logfile = self.tmp / f"worker-{self.tag}-{index}.log"
            command = [sys.executable, "-m", "stream_ids.cli", "worker", "--loglevel", "info"]
            process = subprocess.Popen(
                command,
                env=dict(self.env, STREAM_IDS_WORKER_NAME=f"bench-{index}"),
                cwd=REPO,
                stdout=logfile.open("wb"),
                stderr=subprocess.STDOUT,
            )
            self.workers.append((process, logfile))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            for process, logfile in self.workers:
                if process.poll() is not None:
                    raise RuntimeError(f"worker died:\n{logfile.read_text()[-3000:]}")
            if all(b"[^Worker]: Ready" in logfile.read_bytes() for _, logfile in self.workers):
                time.sleep(5.0)  # every member joined: the group is stable before flows come
                return
            time.sleep(0.5)
        raise RuntimeError("workers not ready")

    def stop_workers(self) -> None:
        for process, _ in self.workers:
            if process.poll() is None:
                process.send_signal(
                    signal.SIGINT if process.args[0] == "py-spy" else signal.SIGTERM
                )
        for process, _ in self.workers:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.workers.clear()

    def count(self, topic: str) -> int:
        from stream_ids.topic_reader import end_offsets

        return sum(end_offsets(self.settings, topic).values())

    def wait_count(self, topic: str, expected: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            seen = self.count(topic)
            if seen >= expected:
                return seen
            for process, logfile in self.workers:
                if process.poll() is not None:
                    raise RuntimeError(f"worker died:\n{logfile.read_text()[-3000:]}")
            time.sleep(1.0)
        return seen


def read_verdicts(settings: Any, topic: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(produced_at, scored_at, kafka timestamp in s) of every verdict, read to the end."""
    import orjson
    from confluent_kafka import Consumer, TopicPartition

    config = settings.confluent_config()
    config.update(
        {
            "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 52_428_800,
        }
    )
    consumer = Consumer(config)
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in metadata.partitions
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    remaining = {p for p, end in ends.items() if end > 0}
    produced, scored, stamps = [], [], []
    while remaining:
        for message in consumer.consume(10_000, timeout=1.0):
            if message.error():
                continue
            value = orjson.loads(message.value())
            produced.append(value["produced_at"])
            scored.append(value["scored_at"])
            stamps.append(message.timestamp()[1] / 1000.0)
            if message.offset() + 1 >= ends[message.partition()]:
                remaining.discard(message.partition())
    consumer.close()
    return (
        np.asarray(produced, dtype=np.float64),
        np.asarray(scored, dtype=np.float64),
        np.asarray(stamps, dtype=np.float64),
    )


# -- producing -----------------------------------------------------------------------------------
# ``produced_at`` is written as this placeholder when the messages are rendered (before the clock
# starts) and replaced by the send time (or the paced due time) when each message is sent, so the
# Python JSON rendering of replay does not limit the offered rate on 2 cores.
PLACEHOLDER = 1000000001.0078125  # exactly representable: orjson writes it as below
PLACEHOLDER_BYTES = b"1000000001.0078125"


class Rendered:
    """The wire messages of ``replay --loop`` (same objects, same host grouping), pre-rendered."""

    def __init__(
        self,
        frame: Any,
        flows: int,
        host_batch: int,
        flush_every: int,
        run: str,
        schema: int = 3,
        binary: bool = True,
    ) -> None:
        import orjson

        from producers.replay import columns_message, flow_object, flow_timestamp, prepare

        prepared = prepare(frame)
        self.keys: list[bytes] = []
        self.values: list[bytes] = []
        self.first: list[int] = []  # index of the message's first flow (for pacing)
        self.last: list[int] = []
        self.counts: list[int] = []  # flows per message
        # host -> [(sent index, (row, flow id, timestamp, produced_at))]
        pending: dict[str, list[tuple[int, tuple[int, str, float, float]]]] = {}

        def single(flow: tuple[int, str, float, float]) -> dict[str, Any]:
            index, flow_id, timestamp, produced_at = flow
            obj = flow_object(prepared, index, flow_id, 0.0, produced_at)
            obj["timestamp"] = timestamp
            return obj

        def emit(host: str, group: list[tuple[int, tuple[int, str, float, float]]]) -> None:
            # the same wire messages as `replay --host-batch` (schema 3), schema 1 (host batch
            # 1), or the older schema-2 micro-batch of flow objects (--schema 2)
            if host_batch == 1:
                value = orjson.dumps(single(group[0][1]))
            elif schema == 2:
                objects = [single(flow) for _, flow in group]
                for obj in objects:
                    del obj["schema"]
                value = orjson.dumps({"schema": 2, "src_ip": host, "flows": objects})
            else:
                value = columns_message(prepared, host, [flow for _, flow in group], binary)
            self.keys.append(host.encode())
            self.values.append(value)
            self.first.append(group[0][0])
            self.last.append(group[-1][0])
            self.counts.append(len(group))

        sent = 0
        loop = 0
        while sent < flows:
            shift = loop * (prepared.span + 1.0)
            for index in range(prepared.n):
                if sent >= flows:
                    break
                flow_id = f"{run}-{loop}-{index}"
                host = prepared.src_ip[index]
                stamp = flow_timestamp(prepared, index, shift, PLACEHOLDER)
                if host_batch == 1:
                    emit(host, [(sent, (index, flow_id, stamp, PLACEHOLDER))])
                else:
                    group = pending.setdefault(host, [])
                    group.append((sent, (index, flow_id, stamp, PLACEHOLDER)))
                    if len(group) >= host_batch:
                        emit(host, pending.pop(host))
                sent += 1
                if host_batch > 1 and sent % flush_every == 0:
                    for name in list(pending):
                        emit(name, pending.pop(name))
            loop += 1
        for name in list(pending):
            emit(name, pending.pop(name))
        order = np.argsort(np.asarray(self.last), kind="stable")
        self.keys = [self.keys[i] for i in order]
        self.values = [self.values[i] for i in order]
        self.first = [self.first[i] for i in order]
        self.last = [self.last[i] for i in order]
        self.counts = [self.counts[i] for i in order]
        self.flows = flows


def blast(
    settings: Any, topic: str, rendered: Rendered, rate: float | None = None
) -> dict[str, Any]:
    """Send every rendered message; ``rate`` paces flows/s (produced_at: first flow's due time)."""
    from confluent_kafka import Producer

    from producers.replay import producer_config

    producer = Producer(producer_config(settings))
    delivered = [0]

    def on_delivery(error: Any, _message: Any) -> None:
        if error is None:
            delivered[0] += 1

    # Connect before the clock starts: the first produce otherwise waits ~1 s for metadata and
    # the idempotent producer id, which the latency run counted as pipeline latency (its first
    # second had p50 0.5-0.7 s while every later second stayed under 0.3 s).
    producer.list_topics(topic, timeout=30)
    warm_until = time.perf_counter() + 1.0
    while time.perf_counter() < warm_until:
        producer.poll(0.1)
    started_wall, started = time.time(), time.perf_counter()
    for index, (key, value) in enumerate(zip(rendered.keys, rendered.values, strict=True)):
        if rate:
            due = rendered.last[index] / rate
            delay = due - (time.perf_counter() - started)
            if delay > 0.001:
                producer.poll(0)
                time.sleep(delay)
            stamp = started_wall + rendered.first[index] / rate
        else:
            stamp = time.time()
        value = value.replace(PLACEHOLDER_BYTES, repr(stamp).encode())
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.02)
        if index % 256 == 0:
            producer.poll(0)
    producer.flush(120)
    seconds = time.perf_counter() - started
    if delivered[0] != len(rendered.values):
        raise RuntimeError(f"only {delivered[0]} of {len(rendered.values)} messages delivered")
    return {
        "flows": rendered.flows,
        "messages": len(rendered.values),
        "seconds": seconds,
        "flows_per_s": rendered.flows / seconds,
    }


# -- 1. passthrough -------------------------------------------------------------------------------
PASSTHROUGH_CODE = r"""
import sys, time, json
from confluent_kafka import Consumer, Producer
bootstrap, source, target, group = sys.argv[1:5]
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest",
                     "enable.auto.commit": True, "fetch.max.bytes": 52428800})
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1000000,
                     "compression.type": "lz4", "partitioner": "murmur2_random",
                     "queue.buffering.max.messages": 500000, "acks": "all"})
consumer.subscribe([source])
print("ready", flush=True)
records, first_in, idle_since = 0, None, None
while True:
    messages = consumer.consume(10000, timeout=0.5)
    if not messages:
        if records and idle_since is None:
            idle_since = time.time()
        if idle_since is not None and time.time() - idle_since > 4.0:
            break
        producer.poll(0)
        continue
    idle_since = None
    for m in messages:
        if m.error():
            continue
        if first_in is None:
            first_in = m.timestamp()[1] / 1000.0
        while True:
            try:
                producer.produce(target, m.value(), m.key())
                break
            except BufferError:
                producer.poll(0.05)
        records += 1
    producer.poll(0)
producer.flush(60)
print(json.dumps({"records": records, "first_in": first_in}), flush=True)
consumer.close()
"""


def passthrough(
    args: argparse.Namespace, bootstrap: str, tmp: Path, rendered: Rendered
) -> dict[str, Any]:
    from producers.replay import ensure_topic

    deployment = Deployment(bootstrap, tmp, args.partitions, {})
    s = deployment.settings
    target = f"bench-pass-{deployment.tag}"
    ensure_topic(s, s.topic_flows)
    ensure_topic(s, target)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PASSTHROUGH_CODE,
            bootstrap,
            s.topic_flows,
            target,
            f"bench-pass-{deployment.tag}",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    if process.stdout is None:
        raise RuntimeError("no stdout")
    process.stdout.readline()  # "ready"
    time.sleep(3.0)  # let the group assignment settle
    sent = blast(s, s.topic_flows, rendered)
    summary = json.loads(process.stdout.readline())
    process.wait(60)
    last_out = last_record_time(s, target)
    seconds = last_out - summary["first_in"]
    flows = rendered.flows
    log(
        f"passthrough: {flows} flows ({summary['records']} records) in {seconds:.1f} s "
        f"= {flows / seconds:,.0f} flows/s (producer alone {sent['flows_per_s']:,.0f} flows/s)"
    )
    return {
        "flows": flows,
        "records": summary["records"],
        "seconds": seconds,
        "flows_per_s": flows / seconds,
        "producer_flows_per_s": sent["flows_per_s"],
    }


def last_record_time(settings: Any, topic: str) -> float:
    from confluent_kafka import Consumer, TopicPartition

    config = settings.confluent_config()
    config.update({"group.id": f"bench-last-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    consumer = Consumer(config)
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    last = 0.0
    for partition in metadata.partitions:
        end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        if end == 0:
            continue
        consumer.assign([TopicPartition(topic, partition, end - 1)])
        while True:
            message = consumer.poll(5.0)
            if message is not None and not message.error():
                last = max(last, message.timestamp()[1] / 1000.0)
                break
    consumer.close()
    return last


# -- 2. scorer alone ------------------------------------------------------------------------------
def scorer_alone(frame: Any, seconds_per_point: float) -> dict[str, Any]:
    from stream_ids.scorer import Scorer
    from stream_ids.sequences import make_windows

    scorer = Scorer.load()
    sample = frame.sample(n=min(20_000, len(frame)), random_state=7).reset_index(drop=True)
    transformed = scorer.transform.transform_many(sample)
    windows, mask = make_windows(transformed, sample["src_ip"], sample["timestamp"], scorer.window)
    lengths = mask.sum(axis=1).astype(np.int32)
    out: dict[str, Any] = {"whole_model": {}, "serving": {}}

    def measure(function: Any, batch: int) -> float:
        for _ in range(3):
            function(batch)
        done, started = 0, time.perf_counter()
        while True:
            function(batch)
            done += batch
            if time.perf_counter() - started >= seconds_per_point and done >= 3 * batch:
                break
        return done / (time.perf_counter() - started)

    def whole(batch: int) -> None:
        np.asarray(scorer.model.predict_on_batch(windows[:batch]))

    for batch in BATCHES:
        out["whole_model"][str(batch)] = measure(whole, batch)
    if hasattr(scorer, "enable_split") and scorer.enable_split():
        # the worker's path per batch: encode the new flows, then the head over each host's
        # cached encodings (here: windows of encodings of real windows, same shapes)
        n = max(BATCHES)
        encoded = scorer.encode(windows[:n].reshape(-1, windows.shape[2])).reshape(
            n, scorer.window, -1
        )

        def serving(batch: int) -> None:
            scorer.encode(transformed[:batch])
            scorer.score_encoded(encoded[:batch], lengths[:batch])

        for batch in BATCHES:
            out["serving"][str(batch)] = measure(serving, batch)
    log(
        "scorer alone (samples/s): whole "
        + ", ".join(f"b{b}={v:,.0f}" for b, v in out["whole_model"].items())
        + (
            "; serving " + ", ".join(f"b{b}={v:,.0f}" for b, v in out["serving"].items())
            if out["serving"]
            else ""
        )
    )
    return out


# -- 3./4. pipeline -------------------------------------------------------------------------------
def pipeline_throughput(
    args: argparse.Namespace,
    bootstrap: str,
    tmp: Path,
    rendered: Rendered,
    workers: int,
    profile: Path | None,
) -> dict[str, Any]:
    deployment = Deployment(bootstrap, tmp, args.partitions, extra_env(args))
    deployment.create_topics()
    deployment.start_workers(workers)
    n = rendered.flows
    spy = None
    if profile is not None:
        # py-spy (sampling, all threads, idle included) attached to the first worker
        spy = subprocess.Popen(
            py_spy_command(deployment.workers[0][0].pid, profile, args.profile_seconds),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        sent = blast(deployment.settings, deployment.settings.topic_flows, rendered)
        log(
            f"  {workers} worker(s): produced {n} flows at {sent['flows_per_s']:,.0f} flows/s; "
            "waiting for verdicts"
        )
        seen = deployment.wait_count(deployment.settings.topic_verdicts, n, timeout=args.timeout)
    finally:
        if spy is not None:
            spy.wait(args.profile_seconds + 60)
        deployment.stop_workers()
    produced, scored, _ = read_verdicts(deployment.settings, deployment.settings.topic_verdicts)
    seconds = float(scored.max() - produced.min())
    rate = len(scored) / seconds
    log(
        f"  {workers} worker(s): {len(scored)}/{n} verdicts in {seconds:.1f} s "
        f"= {rate:,.0f} flows/s"
    )
    return {
        "workers": workers,
        "flows": n,
        "verdicts": len(scored),
        "seen": seen,
        "seconds": seconds,
        "flows_per_s": rate,
        "producer_flows_per_s": sent["flows_per_s"],
    }


def pipeline_latency(
    args: argparse.Namespace, bootstrap: str, tmp: Path, frame: Any, workers: int, rate: float
) -> dict[str, Any]:
    n = int(rate * args.latency_seconds)
    # replay flushes every open host group every 50 ms: group the flows of each 50 ms slot
    rendered = Rendered(
        frame, n, args.host_batch, max(1, int(rate * 0.05)), run="l", schema=args.schema,
        binary=not args.json_features,
    )
    deployment = Deployment(bootstrap, tmp, args.partitions, extra_env(args))
    deployment.create_topics()
    deployment.start_workers(workers)
    try:
        sent = blast(deployment.settings, deployment.settings.topic_flows, rendered, rate=rate)
        deployment.wait_count(deployment.settings.topic_verdicts, n, timeout=args.timeout)
    finally:
        deployment.stop_workers()
    produced, scored, stamps = read_verdicts(
        deployment.settings, deployment.settings.topic_verdicts
    )
    latency = (stamps - produced) * 1000.0
    # where the time goes (medians / p99 over flows): the producer's host grouping (a flow is
    # stamped with its group's first due time), produce -> Kafka -> worker -> scored, publish
    grouping = np.repeat(
        (np.asarray(rendered.last) - np.asarray(rendered.first)) / rate * 1000.0,
        rendered.counts,
    )
    parts = {
        "producer_grouping": grouping,
        "until_scored": (scored - produced) * 1000.0,
        "publish": (stamps - scored) * 1000.0,
    }
    breakdown = {
        name: {"p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99))}
        for name, v in parts.items()
    }
    p50, p95, p99 = (float(np.percentile(latency, q)) for q in (50, 95, 99))
    # the same without the first 2 s of a fresh worker (cold fetch, first changelog and verdict
    # batches): what a running deployment sees; both are reported
    steady = latency[produced - produced.min() >= 2.0]
    steady_p50, steady_p99 = (float(np.percentile(steady, q)) for q in (50, 99))
    log(
        f"  {workers} worker(s) at {rate:,.0f} flows/s offered "
        f"({sent['flows_per_s']:,.0f} achieved): "
        f"latency p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms "
        f"(after the first 2 s: p50 {steady_p50:.0f} ms, p99 {steady_p99:.0f} ms); "
        + ", ".join(
            f"{name} p50 {v['p50_ms']:.0f} / p99 {v['p99_ms']:.0f} ms"
            for name, v in breakdown.items()
        )
    )
    return {
        "offered_flows_per_s": rate,
        "achieved_flows_per_s": sent["flows_per_s"],
        "flows": len(latency),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": float(latency.max()),
        "steady_p50_ms": steady_p50,
        "steady_p99_ms": steady_p99,
        "cdf_ms": [float(v) for v in np.percentile(latency, np.linspace(0, 100, 201))],
        "per_second": latency_timeline(produced, latency),
        "breakdown": breakdown,
    }


def latency_timeline(produced: np.ndarray, latency: np.ndarray) -> list[dict[str, float]]:
    """p50/p99/max latency per second of produce time (where in the run the tail comes from)."""
    second = np.floor(produced - produced.min()).astype(int)
    rows = []
    for index in range(int(second.max()) + 1):
        part = latency[second == index]
        if len(part):
            rows.append(
                {
                    "second": index,
                    "flows": len(part),
                    "p50_ms": float(np.percentile(part, 50)),
                    "p99_ms": float(np.percentile(part, 99)),
                    "max_ms": float(part.max()),
                }
            )
    return rows


def py_spy_command(pid: int, output: Path | str, seconds: float) -> list[str]:
    """py-spy from this venv: collapsed stacks of every thread, idle included, 50 Hz
    (``bench/profile_summary.py`` reads them)."""
    return [
        str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--threads",
        "--idle", "--format", "raw", "--rate", "50", "--output", str(output),
        "--duration", str(int(seconds)),
    ]


def extra_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(item.split("=", 1) for item in args.env)
    if args.batch_size:
        env["STREAM_IDS_BATCH_SIZE"] = str(args.batch_size)
    if args.max_wait_s:
        env["STREAM_IDS_MAX_WAIT_S"] = str(args.max_wait_s)
    return env


# -- report ---------------------------------------------------------------------------------------
def host_flood(args: argparse.Namespace, bootstrap: str, tmp: Path) -> dict[str, Any]:
    """Usual traffic against one flow per source, in this run (bench/host_flood.py's runs)."""
    import host_flood as flood  # bench/ beside this script (it imports this module)

    options = argparse.Namespace(
        bootstrap=bootstrap,
        flows=args.host_flood_flows,
        ttl=60.0,
        span=600.0,
        usual_hosts=16,
        partitions=args.partitions,
        timeout=args.timeout,
        profile=None,
        profile_seconds=0.0,
        profile_delay=0.0,
        no_restart=True,
        restart_log=None,
    )
    start = 1_500_000_000.0
    out: dict[str, Any] = {"flows": options.flows, "ttl_s": options.ttl}
    for name, hosts in (("usual", options.usual_hosts), ("flood", None)):
        log(f"host flood: {name} traffic, {options.flows} flows")
        frame = flood.flows(options.flows, hosts, options.span, start)
        out[name] = flood.run_one(name, frame, options, tmp)
        del frame
    out["throughput_ratio"] = out["flood"]["flows_per_s"] / out["usual"]["flows_per_s"]
    log(
        f"  host flood: usual {out['usual']['flows_per_s']:,.0f} flows/s "
        f"(RSS +{out['usual']['rss_growth_mb']:.0f} MB), one flow per source "
        f"{out['flood']['flows_per_s']:,.0f} flows/s (RSS +{out['flood']['rss_growth_mb']:.0f} "
        f"MB): {out['throughput_ratio']:.1%}"
    )
    return out


def report(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    passthrough_rate = results["passthrough"]["flows_per_s"]
    scorer = results["scorer_alone"]
    path = "serving" if scorer["serving"] else "whole_model"
    scorer_best = max(scorer[path].values(), default=float("nan"))
    table = Table(
        title=f"stream-ids benchmark ({results['machine']['cores']} cores, "
        f"{results['machine']['cpu']}, host batch {results['host_batch']}, "
        f"schema {results.get('schema', 2)})"
    )
    for column in ("measure", "value", "vs passthrough", "vs scorer alone (best batch)"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row(
        "passthrough (confluent-kafka consume -> produce)",
        f"{passthrough_rate:,.0f} flows/s",
        "100%",
        "",
    )
    for name in ("whole_model", "serving"):
        for batch, value in scorer[name].items():
            table.add_row(
                f"scorer alone, {name.replace('_', ' ')}, batch {batch}",
                f"{value:,.0f} samples/s",
                "",
                "",
            )
    for run in results["pipeline"]:
        w = run["workers"]
        rate = run["throughput"]["flows_per_s"]
        table.add_row(
            f"pipeline, {w} worker(s), {run['throughput']['flows']:,} flows",
            f"{rate:,.0f} flows/s",
            f"{rate / passthrough_rate:.1%}",
            f"{rate / scorer_best:.1%}",
        )
        lat = run.get("latency")
        if lat:
            table.add_row(
                f"  latency at {lat['offered_flows_per_s']:,.0f} flows/s offered",
                f"p50 {lat['p50_ms']:.0f} / p95 {lat['p95_ms']:.0f} / p99 {lat['p99_ms']:.0f} ms"
                + (
                    f" (after 2 s: p99 {lat['steady_p99_ms']:.0f})"
                    if "steady_p99_ms" in lat
                    else ""
                ),
                "",
                "",
            )
    flood = results.get("host_flood")
    if flood:
        # one flow per message (schema 1), unlike the pipeline rows: compare the two only
        for name, label in (("usual", "16 sources"), ("flood", "one flow per source")):
            run = flood[name]
            table.add_row(
                f"host flood (#18), {label}, 1 flow/message, {flood['flows']:,} flows",
                f"{run['flows_per_s']:,.0f} flows/s, RSS +{run['rss_growth_mb']:.0f} MB",
                "",
                f"flood/usual {flood['throughput_ratio']:.1%}" if name == "flood" else "",
            )
    Console(width=150).print(table)


def plot(results: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels, values = ["passthrough"], [results["passthrough"]["flows_per_s"]]
    for run in results["pipeline"]:
        labels.append(f"pipeline {run['workers']}w")
        values.append(run["throughput"]["flows_per_s"])
    scorer = results["scorer_alone"]
    path_name = "serving" if scorer["serving"] else "whole_model"
    labels.append("scorer b512")
    values.append(scorer[path_name].get("512", 0.0))
    left.bar(labels, values, color=["#777"] + ["#2a7"] * len(results["pipeline"]) + ["#37c"])
    left.set_ylabel("flows/s (samples/s)")
    left.set_title("throughput")
    for run in results["pipeline"]:
        lat = run.get("latency")
        if lat:
            right.plot(
                lat["cdf_ms"],
                np.linspace(0, 100, len(lat["cdf_ms"])),
                label=f"{run['workers']} worker(s) @ {lat['offered_flows_per_s']:,.0f}/s",
            )
    right.set_xscale("log")
    right.set_xlabel("produce -> verdict latency (ms)")
    right.set_ylabel("percentile")
    right.set_title("latency at half the measured throughput")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flows", type=int, default=500_000)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--broker-port", type=int, default=49092)
    parser.add_argument("--host-batch", type=int, default=32)
    parser.add_argument(
        "--schema",
        type=int,
        choices=[2, 3],
        default=3,
        help="micro-batch wire format (3: by columns, what replay sends; 2: flow objects)",
    )
    parser.add_argument(
        "--json-features",
        action="store_true",
        help="schema 3 with the features as JSON rows (replay --json-features) instead of the "
        "base64 float64 block replay sends by default",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=None, help="STREAM_IDS_BATCH_SIZE")
    parser.add_argument("--max-wait-s", type=float, default=None, help="STREAM_IDS_MAX_WAIT_S")
    parser.add_argument("--scorer-seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy raw (collapsed stacks) profile of the single worker's throughput run",
    )
    parser.add_argument("--profile-seconds", type=float, default=30.0)
    parser.add_argument(
        "--latency-rate", type=float, default=None, help="only the latency runs, at this flows/s"
    )
    parser.add_argument(
        "--env", nargs="*", default=[], help="KEY=VALUE worker env, e.g. TF_NUM_INTRAOP_THREADS=1"
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["passthrough", "scorer", "latency", "hostflood"],
    )
    parser.add_argument(
        "--host-flood-flows",
        type=int,
        default=200_000,
        help="flows of each host-flood run (usual traffic, then one flow per source)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="default: bench/results.json for a full run; a partial one (--skip, "
        "--latency-rate) goes to bench/out/results-partial.json, leaving the full table alone",
    )
    parser.add_argument(
        "--keep-logs", type=Path, default=None, help="keep the workers' logs in this folder"
    )
    args = parser.parse_args()
    if args.json is None:
        partial = bool(args.skip) or args.latency_rate is not None
        args.json = REPO / "bench" / ("out/results-partial.json" if partial else "results.json")

    from producers.replay import FLUSH_EVERY, load_replay_frame
    from stream_ids.datasets import improved_csvs

    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from stream_ids.broker import LocalBroker

        broker = LocalBroker(port=args.broker_port, data_dir=Path("/tmp/perf-broker"))
        log(f"starting the local broker on {broker.bootstrap}")
        for attempt in range(3):  # the port may still be held by a broker that just stopped
            try:
                broker.start()
                break
            except Exception as error:  # BrokerError after the JVM exits
                if attempt == 2:
                    raise
                log(f"broker did not start ({str(error)[:80]}); retrying in 10 s")
                time.sleep(10)
        bootstrap = broker.bootstrap
    results: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join(sys.argv),
        "flows": args.flows,
        "host_batch": args.host_batch,
        "schema": args.schema if args.host_batch > 1 else 1,
        "features": "json" if args.json_features or args.schema != 3 else "binary",
        "batch_size": args.batch_size,
        "max_wait_s": args.max_wait_s,
        "worker_env": args.env,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        with (
            contextlib.nullcontext(str(args.keep_logs))
            if args.keep_logs is not None
            else tempfile.TemporaryDirectory(prefix="stream-ids-bench-")
        ) as folder:
            tmp = Path(folder)
            tmp.mkdir(parents=True, exist_ok=True)
            frame = load_replay_frame(improved_csvs())
            rendered = Rendered(
                frame, args.flows, args.host_batch, FLUSH_EVERY, run="t", schema=args.schema,
                binary=not args.json_features,
            )
            log(
                f"{len(frame)} shared rows, looped to {args.flows} flows, host batch "
                f"{args.host_batch}: {len(rendered.values)} messages rendered"
            )
            results["passthrough"] = (
                {"flows_per_s": float("nan")}
                if "passthrough" in args.skip
                else passthrough(args, bootstrap, tmp, rendered)
            )
            results["scorer_alone"] = (
                {"whole_model": {}, "serving": {}}
                if "scorer" in args.skip
                else scorer_alone(frame, args.scorer_seconds)
            )
            results["pipeline"] = []
            for workers in args.workers:
                log(f"pipeline with {workers} worker(s)")
                run: dict[str, Any] = {"workers": workers}
                if args.latency_rate:  # latency only, at a given offered rate
                    run["throughput"] = {"flows_per_s": 2 * args.latency_rate, "flows": 0}
                else:
                    run["throughput"] = pipeline_throughput(
                        args,
                        bootstrap,
                        tmp,
                        rendered,
                        workers,
                        args.profile if workers == 1 else None,
                    )
                if "latency" not in args.skip:
                    run["latency"] = pipeline_latency(
                        args, bootstrap, tmp, frame, workers, run["throughput"]["flows_per_s"] / 2
                    )
                results["pipeline"].append(run)
            if "hostflood" not in args.skip:
                results["host_flood"] = host_flood(args, bootstrap, tmp)
    finally:
        if broker is not None:
            broker.stop()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["machine"]["load_avg_at_end"] = list(os.getloadavg())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    plot(results, args.json.with_suffix(".png"))
    report(results)
    log(f"wrote {args.json} and {args.json.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
