"""``stream-ids demo``: the main job end to end on one machine.

First checks its inputs (the flow files, read in full; the model's manifest and checksums), so
that a missing file fails before anything starts. Then starts the local Kafka broker when none
is reachable, starts one worker subprocess, replays the flows (the given files or folders, else
the shared corrected CICIDS2017 rows, else the sample embedded in the package), waits until
every replayed flow has a verdict and the worker's cumulative statistics cover them, prints a
summary and stops what it started.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="broker + worker + replay of the CICIDS2017 rows, then a summary",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="flow files (.csv, .csv.gz) or folders of them (default: the shared "
                        "corrected CICIDS2017 rows, else the embedded sample)")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N flows")
    parser.add_argument("--loop", type=int, default=1, metavar="K", help="replay K times")
    parser.add_argument("--rate", type=float, metavar="FLOWS_PER_S", help="paced replay")
    parser.add_argument("--model-dir", help="model directory (default: the shipped model)")
    parser.add_argument("--host-batch", type=int, default=32, metavar="N",
                        help="flows of one host per record (schema 3; 1 = one flow per record)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for all verdicts (900)")
    parser.set_defaults(handler=run)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stream_ids.cli", *args]


def check_inputs(args: argparse.Namespace, console: Any) -> tuple[Any, Any]:
    """The replay frame and the model folder, checked before anything starts."""
    from producers.replay import load_replay_frame
    from stream_ids.artifacts import model_dir_or_shipped, verified_manifest
    from stream_ids.commands._shared import flow_paths
    from stream_ids.errors import ConfigurationError
    from stream_ids.settings import get_settings

    if args.loop < 1:
        raise ConfigurationError("--loop must be >= 1")
    paths = flow_paths(args.paths, console)
    try:
        frame = load_replay_frame(paths, args.limit)
    except ValueError as error:
        raise ConfigurationError(f"{error}: {', '.join(map(str, paths[:3]))}") from error
    model_dir = model_dir_or_shipped(args.model_dir or get_settings().model_dir)
    verified_manifest(model_dir)
    return frame, model_dir


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from producers.replay import replay
    from stream_ids.errors import BrokerError
    from stream_ids.kafka_admin import ensure_topic
    from stream_ids.kafka_probe import broker_reachable
    from stream_ids.settings import Settings, get_settings
    from stream_ids.topic_reader import end_offsets

    console = Console(stderr=True, highlight=False)
    frame, model_dir = check_inputs(args, console)
    settings = Settings(bootstrap_servers=args.bootstrap) if args.bootstrap else get_settings()
    started_broker: str | None = None  # the port of the broker this run started
    worker: subprocess.Popen | None = None
    run_id = secrets.token_hex(4)
    worker_name = f"demo-{run_id}"
    try:
        if not broker_reachable(settings):
            _host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
            port = port or "9092"
            console.print(f"no broker at {settings.bootstrap_servers}: starting the local one")
            start = subprocess.run(_cli("broker", "start", "--port", port), check=False)  # noqa: S603
            if start.returncode == 0:
                started_broker = port
            if start.returncode != 0 or not broker_reachable(settings, 10.0):
                raise BrokerError("could not start the local broker (see above)")
        for topic in (settings.topic_flows, settings.topic_verdicts, settings.topic_alerts,
                      settings.topic_dead_letter):
            ensure_topic(settings, topic)
        ensure_topic(settings, settings.topic_stats, partitions=1)
        verdict_start = end_offsets(settings, settings.topic_verdicts)

        env = dict(os.environ)
        env.update(
            {
                "STREAM_IDS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
                "STREAM_IDS_WORKER_NAME": worker_name,
                "STREAM_IDS_METRICS_PORT": env.get("STREAM_IDS_METRICS_PORT", "0"),
            }
        )
        console.print(f"starting worker {worker_name} (loading the model) ...")
        worker = subprocess.Popen(  # noqa: S603
            _cli("worker", "--model-dir", str(model_dir)), env=env
        )
        console.print(f"replaying {len(frame):,} flows x {args.loop} to {settings.topic_flows}")
        result = replay([], settings, frame=frame, loop=args.loop, rate=args.rate,
                        id_prefix=run_id, host_batch=max(1, args.host_batch))
        for note in result.notes:
            console.print(f"[yellow]note:[/] {note}")
        if result.failed:
            console.print(f"[red]{result.failed} deliveries failed[/]: {result.errors[:3]}")
        console.print(
            f"replayed {result.delivered:,} flows in {result.seconds:.1f} s "
            f"({result.rate:,.0f} flows/s)"
        )
        verdicts = _wait_for_verdicts(settings, verdict_start, f"{run_id}-", result.delivered,
                                      worker, args.timeout, console)
        missing = result.delivered - verdicts.count
        summary = _cumulative_stats(settings, worker_name, verdicts.count)
        _print_summary(console, result, verdicts.count, missing, summary, verdicts.seconds)
        return 0 if missing == 0 and not result.failed else 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if started_broker is not None:
            subprocess.run(_cli("broker", "stop", "--port", started_broker), check=False)  # noqa: S603


@dataclass
class _Verdicts:
    count: int
    seconds: float  # first to last scored_at


def _wait_for_verdicts(settings: Any, start: dict[int, int], prefix: str, expected: int,
                       worker: subprocess.Popen, timeout: float, console: Any) -> _Verdicts:
    """Read verdicts of this run (flow ids ``prefix...``) until all came, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from stream_ids.errors import BrokerError
    from stream_ids.topic_reader import read_topic

    seen: set[str] = set()
    first_scored, last_scored = float("inf"), 0.0
    deadline = time.monotonic() + timeout
    columns = (TextColumn("verdicts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("verdicts", total=expected)
        for _key, verdict in read_topic(settings, settings.topic_verdicts, start=start,
                                        follow=True):
            if isinstance(verdict, dict) and str(verdict.get("flow_id", "")).startswith(prefix):
                seen.add(verdict["flow_id"])
                scored = verdict.get("scored_at")
                if scored:
                    first_scored, last_scored = min(first_scored, scored), max(last_scored, scored)
                progress.update(task, completed=len(seen))
                if len(seen) >= expected:
                    break
            if worker.poll() is not None:
                raise BrokerError(f"the worker exited with status {worker.returncode} "
                                  "(its messages are above)")
            if time.monotonic() > deadline:
                break
    return _Verdicts(len(seen), last_scored - first_scored if seen else 0.0)


def _cumulative_stats(settings: Any, worker_name: str, verdicts: int) -> dict:
    """The worker's cumulative statistics once they cover ``verdicts`` flows (30 s at most)."""
    from stream_ids.commands._shared import combine
    from stream_ids.topic_reader import latest_stats

    cumulative: dict = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cumulative = latest_stats(settings).get((worker_name, "cumulative"), {})
        if cumulative.get("flows", 0) >= verdicts:
            break
        time.sleep(1.0)
    return combine([cumulative]) if cumulative else {}


def _print_summary(console: Any, result: Any, verdicts: int, missing: int, summary: dict,
                   seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    table = Table(title="stream-ids demo", show_header=False)
    table.add_row("flows replayed", f"{result.delivered:,}")
    missing_text = f"  [red]({missing} missing)[/]" if missing else ""
    table.add_row("verdicts", f"{verdicts:,}{missing_text}")
    table.add_row("alerts", f"{summary.get('alerts', 0):,}")
    table.add_row("accuracy", pct(summary.get("accuracy")))
    table.add_row("false-alarm rate", pct(summary.get("false_alarm_rate")))
    table.add_row("precision / recall",
                  f"{pct(summary.get('precision'))} / {pct(summary.get('recall'))}")
    if seconds > 0:
        table.add_row("worker throughput",
                      f"{verdicts / seconds:,.0f} flows/s ({verdicts:,} in {seconds:.1f} s, "
                      "first to last verdict)")
    table.add_row("replay rate", f"{result.rate:,.0f} flows/s")
    Console().print(table)


