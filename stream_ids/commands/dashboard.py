"""``stream-ids dashboard``: serve the live operator page."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from rich.console import Console


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve a live web page of flows/s, alerts/s, FAR/precision/recall and alerts",
        description=(
            "Reads the verdicts, alerts and stats topics (own consumer group, never commits) "
            "and serves one page that updates itself every second."
        ),
    )
    parser.add_argument("--port", type=int, default=8088, help="HTTP port (default 8088)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)",
    )
    parser.add_argument(
        "--bootstrap", default=None, help="Kafka bootstrap servers (default: settings)"
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--lookback",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="start from the records of the last SECONDS (default 600)",
    )
    start.add_argument(
        "--from-beginning", action="store_true", help="read the topics from their beginning"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stream_ids.commands._shared import settings_with_bootstrap
    from stream_ids.dashboard import Dashboard
    from stream_ids.kafka_probe import require_broker

    settings = settings_with_bootstrap(args.bootstrap)
    require_broker(settings)
    config = settings.confluent_config()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    dashboard = Dashboard(
        config,
        verdicts_topic=settings.topic_verdicts,
        alerts_topic=settings.topic_alerts,
        stats_topic=settings.topic_stats,
        host=args.host,
        port=args.port,
        lookback_s=None if args.from_beginning else args.lookback,
    )
    console = Console(stderr=True)
    with dashboard:
        console.print(
            f"dashboard on [bold]{dashboard.url}[/] reading {config['bootstrap.servers']} "
            f"(consumer group {dashboard.feed.group_id}); Ctrl-C stops it",
            highlight=False,
        )
        wait_for_stop_signal()
        console.print("stopping")
    return 0


def wait_for_stop_signal() -> None:
    """Return on Ctrl-C (SIGINT) or SIGTERM.

    The handlers are installed here rather than relying on Python's default: a process started
    from a background job inherits SIGINT as *ignored*, and Python then never raises
    KeyboardInterrupt (this hung CI). The wait is bounded so that the main thread wakes up to
    run a handler even when the kernel delivered the signal to another thread.
    """
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {number: signal.signal(number, request_stop)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
