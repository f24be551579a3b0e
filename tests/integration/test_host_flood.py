"""Bounded host state under a spoofed-source flood (#18), real worker, real broker.

15,000 flows (``STREAM_IDS_FLOOD_FLOWS``), each from a different source address, spread over
ten host TTLs of flow time: the worker's host count stays near what one TTL holds, every flow
gets exactly one verdict, and a SIGKILLed worker's successor restores only the live hosts (the
expired ones were deleted with changelog tombstones). Sizes for CI; the 600,000-flow
measurement is ``bench/host_flood.py`` (docs/reliability.md).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from reliability_harness import ReliabilityStream, summarise

from producers.replay import load_replay_frame, replay
from stream_ids.datasets import improved_csvs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_FLOWS = int(os.environ.get("STREAM_IDS_FLOOD_FLOWS", "15000"))
TTL_S = 5.0
SPAN_S = 10 * TTL_S


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    match = re.search(rf"^{name} ([-0-9.e+naNinf]+)$", text, re.MULTILINE)
    assert match, f"{name} not on /metrics"
    return float(match.group(1))


def flood_frame(n: int, start: float, first_host: int) -> object:
    base = load_replay_frame(improved_csvs(), limit=n)
    frame = base.iloc[np.arange(n) % len(base)].reset_index(drop=True)
    hosts = np.arange(first_host, first_host + n)
    frame["src_ip"] = [f"10.{h >> 16 & 255}.{h >> 8 & 255}.{h & 255}" for h in hosts.tolist()]
    frame["timestamp"] = start + np.linspace(0.0, SPAN_S, n, endpoint=False)
    return frame


def test_spoofed_source_flood_keeps_state_bounded_and_restores_live_hosts_only(
    kafka_bootstrap, tmp_path: Path
) -> None:
    port = free_port()
    stream = ReliabilityStream(
        kafka_bootstrap,
        tmp_path,
        partitions=4,
        STREAM_IDS_HOST_TTL_S=str(TTL_S),
        STREAM_IDS_METRICS_PORT=str(port),
    )
    frame = flood_frame(N_FLOWS, 1_500_000_000.0, 0)
    # hosts one TTL (* 1.25: a sweep every quarter TTL) of flow time holds, and a margin for
    # batches in flight and not yet committed; the flood has N_FLOWS
    live_bound = int(N_FLOWS / SPAN_S * TTL_S * 1.25) + 2000
    with stream.running("w1") as tracker:
        result = replay([], stream.settings, frame=frame, id_prefix="flood", progress=False)
        assert result.delivered == N_FLOWS
        tracker.wait_unique(N_FLOWS, timeout=240, alive=stream.check_alive)
        summary = summarise(tracker.records, N_FLOWS)
        assert summary["lost"] == 0 and summary["duplicated"] == 0, summary
        deadline = time.monotonic() + 30  # the last batch's state is written after its verdicts
        while True:
            hosts = metric(port, "stream_ids_hosts_in_state")
            expired = metric(port, "stream_ids_hosts_expired_total")
            if hosts + expired == N_FLOWS or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert 0 < hosts <= live_bound, (hosts, live_bound)
        assert expired >= N_FLOWS - live_bound
        assert hosts + expired == N_FLOWS  # nothing evicted by the budget, none lost
        stream.signal_worker("w1", signal.SIGKILL)
        port2 = free_port()
        stream.env["STREAM_IDS_METRICS_PORT"] = str(port2)
        stream.start_worker("w2")
        # flows after the flood (one host, later flow time): the restarted worker's first
        # batches, which index the restored state
        after = flood_frame(200, 1_500_000_000.0 + SPAN_S, N_FLOWS)
        after["src_ip"] = "10.255.255.1"
        replay([], stream.settings, frame=after, id_prefix="after", progress=False)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if {r["flow_id"] for r in tracker.records} >= {f"after-{i}" for i in range(200)}:
                break
            stream.check_alive()
            time.sleep(0.5)
        verdicts = [r for r in tracker.records if r["flow_id"].startswith("flood-")]
        summary = summarise(verdicts, N_FLOWS)
        assert summary["lost"] == 0, summary
        restored = metric(port2, "stream_ids_state_restored_hosts")
        # the successor restored the live hosts only: never the N_FLOWS the flood brought
        assert 0 < restored <= live_bound, (restored, live_bound)
        # every restored host came from a changelog record the restore read and counted (how
        # many more it read depends on the broker's cleaner: bench/host_flood.py measures it)
        records = metric(port2, "stream_ids_state_restored_records")
        assert records >= restored, (records, restored)
