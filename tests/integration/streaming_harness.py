"""Run real `stream-ids worker` subprocesses against a broker with per-test topics and group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from stream_ids.settings import Settings
from stream_ids.topic_reader import read_topic

REPO = Path(__file__).resolve().parents[2]


class Stream:
    """One isolated streaming deployment: unique topic names and consumer group."""

    def __init__(self, bootstrap: str, tmp: Path, partitions: int = 8) -> None:
        tag = uuid.uuid4().hex[:10]
        self.tmp = tmp
        self.env = dict(os.environ)
        self.env.update(
            {
                "STREAM_IDS_BOOTSTRAP_SERVERS": bootstrap,
                "STREAM_IDS_TOPIC_FLOWS": f"flows-{tag}",
                "STREAM_IDS_TOPIC_VERDICTS": f"verdicts-{tag}",
                "STREAM_IDS_TOPIC_ALERTS": f"alerts-{tag}",
                "STREAM_IDS_TOPIC_STATS": f"stats-{tag}",
                "STREAM_IDS_TOPIC_DEAD_LETTER": f"dlq-{tag}",
                "STREAM_IDS_APP_ID": f"it-{tag}",
                "STREAM_IDS_TOPIC_PARTITIONS": str(partitions),
                "STREAM_IDS_METRICS_PORT": "0",
                "STREAM_IDS_STATS_INTERVAL_S": "1.0",
                "STREAM_IDS_DATA_DIR": str(tmp / "faust"),
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "PYTHONPATH": str(REPO),
            }
        )
        self.settings = Settings(
            bootstrap_servers=bootstrap,
            topic_flows=f"flows-{tag}",
            topic_verdicts=f"verdicts-{tag}",
            topic_alerts=f"alerts-{tag}",
            topic_stats=f"stats-{tag}",
            topic_dead_letter=f"dlq-{tag}",
            app_id=f"it-{tag}",
            topic_partitions=partitions,
        )
        self.workers: list[tuple[subprocess.Popen, Path]] = []

    def create_topics(self) -> None:
        from producers.replay import ensure_topic

        s = self.settings
        for topic in (s.topic_flows, s.topic_verdicts, s.topic_alerts, s.topic_dead_letter):
            ensure_topic(s, topic)
        ensure_topic(s, s.topic_stats, partitions=1)

    def start_worker(self, name: str, runner: Path | None = None) -> subprocess.Popen:
        """``stream-ids worker``; ``runner``: a script run instead of the CLI module (faults)."""
        log = self.tmp / f"{name}.log"
        env = dict(self.env, STREAM_IDS_WORKER_NAME=name)
        entry = [str(runner)] if runner is not None else ["-m", "stream_ids.cli"]
        process = subprocess.Popen(
            [sys.executable, *entry, "worker", "--loglevel", "info"],
            env=env,
            cwd=REPO,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.workers.append((process, log))
        return process

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until every worker logged Faust's "Ready" (model loaded, partitions assigned)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process, log in self.workers:
                assert process.poll() is None, f"worker died:\n{excerpt(log)}"
            if all(b"[^Worker]: Ready" in log.read_bytes() for _, log in self.workers):
                return
            time.sleep(0.5)
        raise AssertionError("workers not ready:\n" + self.diagnostics())

    def logs(self) -> str:
        """Each worker's last 3,000 characters (tests look for lines in them)."""
        return "\n".join(log.read_text(errors="replace")[-3000:] for _, log in self.workers)

    def diagnostics(self) -> str:
        """Each worker's log for a failure message (:func:`excerpt`: the cause first)."""
        return "\n".join(excerpt(log) for _, log in self.workers)

    def collect(self, topic: str, count: int, timeout: float = 240.0) -> list[dict[str, Any]]:
        """Read ``topic`` from the beginning until ``count`` records arrived (or time out)."""
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        for _key, value in read_topic(self.settings, topic, follow=True):
            if value is not None:
                records.append(value)
            if len(records) >= count or time.monotonic() > deadline:
                break
            for process, log in self.workers:
                assert process.poll() is None, f"worker died:\n{excerpt(log)}"
        return records

    def read_all(self, topic: str) -> list[tuple[bytes | None, Any]]:
        return list(read_topic(self.settings, topic))

    def stop(self) -> None:
        for process, _log in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _log in self.workers:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    def alive(self) -> bool:
        return all(process.poll() is None for process, _ in self.workers)


def excerpt(log: Path, tail: int = 3000, most: int = 200) -> str:
    """A worker log for a failure message: its name, its warnings and errors and the lines of
    each traceback (the cause: a crash's last lines only show Faust stopping), then its last
    ``tail`` characters. Beyond ``most`` picked lines the first ones are kept (the cause
    comes before the tracebacks of the shutdown it starts) and the last few."""
    text = log.read_text(errors="replace")
    picked: list[str] = []
    in_traceback = 0
    for line in text.splitlines():
        if line.startswith("Traceback"):
            in_traceback = 40
        if in_traceback or "[ERROR]" in line or "[CRITICAL]" in line or "[WARNING]" in line:
            picked.append(line[:400])
        in_traceback = max(0, in_traceback - 1)
    if len(picked) > most:
        picked = [*picked[: most - 20], f"... {len(picked) - most} lines ...", *picked[-20:]]
    head = "\n".join(picked)
    return (
        f"== {log.name}: warnings, errors, tracebacks ==\n{head}\n"
        f"== {log.name}: last lines ==\n{text[-tail:]}"
    )
