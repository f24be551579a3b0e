"""``stream-ids broker start|stop|status``: the no-Docker local Kafka broker."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from stream_ids.broker import KAFKA_VERSION, LocalBroker


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "broker", help="start, stop or inspect the local Kafka broker (KRaft, no Docker)"
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int, default=9092, help="client port (controller: port+1)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="state folder (default ~/.local/state/stream-ids/broker-PORT)",
    )
    parser.add_argument("--kafka-version", default=KAFKA_VERSION)
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    console = Console()
    broker = LocalBroker(
        port=arguments.port, data_dir=arguments.data_dir, kafka_version=arguments.kafka_version
    )
    if arguments.action == "start":
        started_at = time.monotonic()
        with console.status(f"starting Kafka {broker.kafka_version} on {broker.bootstrap} ..."):
            started = broker.start()
        if started:
            console.print(
                f"[green]started[/] Kafka {broker.kafka_version} on {broker.bootstrap} "
                f"in {time.monotonic() - started_at:.1f} s (pid {broker.status().pid}, "
                f"log {broker.log_file})"
            )
        else:
            console.print(
                f"[yellow]already running[/] on {broker.bootstrap} (pid {broker.status().pid})"
            )
        return 0
    if arguments.action == "stop":
        if broker.stop():
            console.print(f"[green]stopped[/] the broker on {broker.bootstrap}")
        else:
            console.print(f"no broker of ours was running on {broker.bootstrap}")
        return 0
    status = broker.status()
    if status.running:
        console.print(
            f"[green]running[/] on {status.bootstrap}, pid {status.pid}, data {status.data_dir}"
        )
        return 0
    console.print(f"[red]not running[/] (port {arguments.port}, data {status.data_dir})")
    return 1
