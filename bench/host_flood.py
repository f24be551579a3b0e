"""Bounded host state under a spoofed-source flood (#18): RSS, restart, throughput.

Two deployments in one run, each one ``stream-ids worker`` consuming a backlog of the same
number of flows (the CICIDS2017 rows, tiled): **usual** traffic (``--usual-hosts`` sources)
and a **flood** (every flow from a different source), both spread over ``--span`` seconds of
flow time with ``STREAM_IDS_HOST_TTL_S=--ttl``. Reports each worker's throughput (verdicts over
the first-to-last verdict time), its RSS at ready and at the end (peak sampled every 0.5 s),
then SIGKILLs the flood worker, starts another and times its first verdict (a flow sent after
the restart) and what it restored (``stream_ids_state_restored_hosts`` on /metrics).

    .venv/bin/python bench/host_flood.py --bootstrap 127.0.0.1:39092 --flows 600000 --ttl 60

Done-when of #18: RSS growth < 250 MB, first verdict after restart < 30 s, flood throughput
>= 70% of usual. Results go to stdout as JSON (docs/reliability.md has a run's numbers).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/run.py beside this script
from run import REPO, Deployment, py_spy_command, read_verdicts


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stopping = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


def flows(n: int, hosts: int | None, span: float, start: float, first: int = 0) -> Any:
    from producers.replay import load_replay_frame
    from stream_ids.datasets import improved_csvs

    base = load_replay_frame(improved_csvs())
    frame = base.iloc[np.arange(n) % len(base)].reset_index(drop=True)
    ids = np.arange(first, first + n) if hosts is None else np.arange(n) % hosts
    frame["src_ip"] = [f"10.{h >> 16 & 255}.{h >> 8 & 255}.{h & 255}" for h in ids.tolist()]
    frame["timestamp"] = start + np.linspace(0.0, span, n, endpoint=False)
    return frame


def run_one(name: str, frame: Any, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from producers.replay import replay

    port = free_port()
    env = {"STREAM_IDS_HOST_TTL_S": str(args.ttl), "STREAM_IDS_METRICS_PORT": str(port)}
    deployment = Deployment(args.bootstrap, tmp, args.partitions, env)
    deployment.create_topics()
    replay([], deployment.settings, frame=frame, id_prefix=name, progress=False)
    deployment.start_workers(1)
    process = deployment.workers[0][0]
    ready_rss = rss_mb(process.pid)
    spy = profile(process.pid, args, name)
    peak = PeakRss(process.pid)
    peak.start()
    topic = deployment.settings.topic_verdicts
    seen = deployment.wait_count(topic, len(frame), timeout=args.timeout)
    end_rss = rss_mb(process.pid)
    peak.stopping.set()
    if spy is not None:
        spy.wait(args.profile_delay + args.profile_seconds + 60)
    _produced, _scored, stamps = read_verdicts(deployment.settings, topic)
    result: dict[str, Any] = {
        "flows": len(frame),
        "verdicts": int(seen),
        "flows_per_s": round(len(stamps) / max(1e-9, float(stamps.max() - stamps.min())), 1),
        "rss_ready_mb": round(ready_rss, 1),
        "rss_end_mb": round(end_rss, 1),
        "rss_peak_mb": round(max(peak.peak, end_rss), 1),
        "rss_growth_mb": round(max(peak.peak, end_rss) - ready_rss, 1),
        "hosts_in_state": metric(port, "stream_ids_hosts_in_state"),
        "hosts_expired": metric(port, "stream_ids_hosts_expired_total"),
        "hosts_evicted": metric(port, "stream_ids_hosts_evicted_total"),
    }
    if name == "flood" and not args.no_restart:
        result.update(restart(deployment, process, frame, seen, args))
    deployment.stop_workers()
    return result


def profile(pid: int, args: argparse.Namespace, name: str) -> Any:
    """py-spy (collapsed stacks, all threads, idle included) on the worker, when asked:
    ``bench/profile_summary.py PROFILE-NAME.txt`` reads it."""
    if args.profile is None:
        return None
    spy = py_spy_command(pid, f"{args.profile}-{name}.txt", args.profile_seconds)
    # the first seconds of a worker are its start-up: --profile-delay skips them
    command = ["sh", "-c", f'sleep {args.profile_delay:g} && exec "$@"', "sh", *spy]
    return subprocess.Popen(  # noqa: S603 - py-spy from this venv on our own worker
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def restart(
    deployment: Deployment, process: Any, frame: Any, seen: int, args: argparse.Namespace
) -> dict[str, Any]:
    """SIGKILL the worker, start another at once and time its first verdict.

    The flow it must score is produced before the new worker starts (and built before the
    kill), so the figure is the worker's alone: start-up, group join, changelog restore,
    first batch. (The first measurements of #18 also counted the bench's 5 s settling sleep
    and a reload of the CSVs.)"""
    from producers.replay import replay

    topic = deployment.settings.topic_verdicts
    later = flows(1, None, 1.0, float(frame["timestamp"].max()) + 1.0, first=len(frame))
    process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    process.wait(30)
    deployment.workers.clear()
    replay([], deployment.settings, frame=later, id_prefix="after", progress=False)
    port = free_port()
    deployment.env["STREAM_IDS_METRICS_PORT"] = str(port)
    started = time.monotonic()
    spawn(deployment)
    spy = profile(deployment.workers[0][0].pid, args, "restart")
    deployment.wait_count(topic, seen + 1, timeout=args.timeout)
    first = time.monotonic()
    if args.restart_log:  # the restarted worker's log so far: its own timeline
        Path(args.restart_log).write_bytes(deployment.workers[0][1].read_bytes())
    if spy is not None:
        spy.wait(args.profile_delay + args.profile_seconds + 60)
    restore_s = metric(port, "stream_ids_state_restore_seconds")
    return {
        "restart_to_first_verdict_s": round(first - started, 1),
        "kill_to_first_verdict_s": round(first - killed, 1),
        # spawn -> partitions assigned: imports, model load, group join (the killed member
        # holds its partitions until its session times out)
        "startup_before_restore_s": round(first - started - restore_s, 1),
        "restore_s": restore_s,
        "recovery_s": metric(port, "stream_ids_state_recovery_seconds"),
        "restored_records": metric(port, "stream_ids_state_restored_records"),
        "restored_hosts": metric(port, "stream_ids_state_restored_hosts"),
    }


def spawn(deployment: Deployment) -> None:
    """One ``stream-ids worker`` as Deployment.start_workers starts it, without waiting."""
    logfile = deployment.tmp / f"worker-{deployment.tag}-restart.log"
    command = [sys.executable, "-m", "stream_ids.cli", "worker", "--loglevel", "info"]
    process = subprocess.Popen(  # noqa: S603 - our own worker command, no shell, no outside input
        command,
        env=dict(deployment.env, STREAM_IDS_WORKER_NAME="bench-0"),
        cwd=REPO,
        stdout=logfile.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deployment.workers.append((process, logfile))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--flows", type=int, default=600_000)
    parser.add_argument("--ttl", type=float, default=60.0)
    parser.add_argument("--span", type=float, default=600.0, help="seconds of flow time")
    parser.add_argument("--usual-hosts", type=int, default=16)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument(
        "--profile", default=None, help="py-spy each worker: PROFILE-usual.txt, PROFILE-flood.txt"
    )
    parser.add_argument("--profile-seconds", type=float, default=30.0)
    parser.add_argument("--profile-delay", type=float, default=0.0)
    parser.add_argument("--restart-log", default=None, help="copy the restarted worker's log here")
    parser.add_argument(
        "--no-restart", action="store_true", help="skip the SIGKILL/restart of the flood worker"
    )
    args = parser.parse_args()
    start = 1_500_000_000.0
    results: dict[str, Any] = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="stream-ids-flood-") as tmp:
        usual = flows(args.flows, args.usual_hosts, args.span, start)
        results["usual"] = run_one("usual", usual, args, Path(tmp))
        del usual
        flood = flows(args.flows, None, args.span, start)
        results["flood"] = run_one("flood", flood, args, Path(tmp))
    results["throughput_ratio"] = round(
        results["flood"]["flows_per_s"] / results["usual"]["flows_per_s"], 3
    )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
