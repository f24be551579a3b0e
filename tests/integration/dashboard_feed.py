"""Realistic ``verdicts`` / ``alerts`` / ``stats`` records (contract schemas) for dashboard tests.

Shared by the browser test and ``docs/img/make_dashboard_screenshot.py``; stands in for a worker
scoring a replay: a DDoS burst from a few attackers amid benign hosts.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import orjson
from confluent_kafka import Producer

ATTACKERS = ["172.16.0.1", "172.16.0.11", "172.16.0.12"]
BENIGN = [f"192.168.10.{n}" for n in (3, 5, 8, 9, 12, 14, 15, 16, 17, 19, 25, 50, 51)]
MODEL_VERSION = "cnn-lstm-test"


@dataclass
class Produced:
    verdicts: int = 0
    alerts: int = 0
    stats: int = 0
    alert_hosts: set[str] = field(default_factory=set)


def verdict(rng: random.Random, now: float, attack_share: float = 0.3) -> dict:
    attack = rng.random() < attack_share
    src = rng.choice(ATTACKERS) if attack else rng.choice(BENIGN)
    score = rng.uniform(0.9, 0.9999) if attack else rng.uniform(0.0, 0.2)
    label = "DDoS" if attack else "BENIGN"
    if rng.random() < 0.02:  # the odd false alarm and miss
        score = 1.0 - score
    produced_at = now - rng.uniform(0.02, 0.3)
    return {
        "flow_id": f"{src}-192.168.10.50-{rng.randint(1024, 65535)}-80-6",
        "src_ip": src,
        "dst_ip": "192.168.10.50",
        "dst_port": 80 if attack else rng.choice([80, 443, 53, 22]),
        "protocol": 6,
        "timestamp": 1499453793.8 + rng.uniform(0, 3600),
        "produced_at": produced_at,
        "scored_at": now,
        "score": round(score, 6),
        "is_attack": score >= 0.5,
        "threshold": 0.5,
        "model_version": MODEL_VERSION,
        "label": label,
        "window_length": rng.randint(1, 8),
    }


class StatsFolder:
    """What a worker's stats agent would publish: sliding 60 s and cumulative windows."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.started = time.time()
        self.events: list[tuple[float, int, int, int, int]] = []  # (t, tp, fp, tn, fn)

    def add(self, v: dict) -> None:
        truth = v["label"] != "BENIGN"
        predicted = bool(v["is_attack"])
        self.events.append(
            (v["scored_at"], truth and predicted, predicted and not truth,
             not truth and not predicted, truth and not predicted)
        )  # fmt: skip

    def records(self, now: float) -> list[dict]:
        out = []
        for window, since in (("sliding_60s", now - 60), ("cumulative", self.started)):
            chosen = [e for e in self.events if e[0] >= since]
            tp, fp, tn, fn = (sum(e[i] for e in chosen) for i in range(1, 5))
            out.append(
                {
                    "worker": self.worker, "window": window, "window_start": since,
                    "window_end": now, "flows": len(chosen), "alerts": tp + fp,
                    "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                    "false_alarm_rate": fp / (fp + tn) if fp + tn else None,
                    "precision": tp / (tp + fp) if tp + fp else None,
                    "recall": tp / (tp + fn) if tp + fn else None,
                    "emitted_at": now,
                }
            )  # fmt: skip
        return out


def produce_replay(
    bootstrap: str,
    topics: dict[str, str],
    seconds: float,
    flows_per_s: float = 200.0,
    seed: int = 7,
    stop: threading.Event | None = None,
    attack_share: float = 0.3,
    folder: StatsFolder | None = None,
    produced: Produced | None = None,
) -> Produced:
    """Produce verdicts (+ alerts, + stats every second) for ``seconds``, like a scoring worker."""
    rng = random.Random(seed)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    folder = folder or StatsFolder(f"test-worker-{uuid.uuid4().hex[:6]}")
    produced = produced or Produced()
    tick = 0.1
    end = time.time() + seconds
    next_stats = time.time()
    while time.time() < end and not (stop and stop.is_set()):
        now = time.time()
        for _ in range(max(1, int(flows_per_s * tick * rng.uniform(0.6, 1.4)))):
            v = verdict(rng, now, attack_share)
            key = v["src_ip"].encode()
            value = orjson.dumps(v)
            producer.produce(topics["verdicts"], value, key)
            produced.verdicts += 1
            if v["is_attack"]:
                producer.produce(topics["alerts"], value, key)
                produced.alerts += 1
                produced.alert_hosts.add(v["src_ip"])
            folder.add(v)
        if now >= next_stats:
            for record in folder.records(now):
                producer.produce(topics["stats"], orjson.dumps(record), folder.worker.encode())
                produced.stats += 1
            next_stats = now + 1.0
        producer.poll(0)
        time.sleep(tick)
    producer.flush(30)
    return produced
