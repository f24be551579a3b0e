"""``stream-ids alerts``: the latest alerts (what the SOC sees); ``--follow`` keeps watching."""

from __future__ import annotations

import argparse
import time
from collections import deque
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("alerts", help="show alerts from the alerts topic")
    parser.add_argument("--follow", "-f", action="store_true", help="keep showing new alerts")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="rows shown (20)")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers")
    parser.add_argument("--topic", help="alerts topic (default STREAM_IDS_TOPIC_ALERTS)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line on stdout (for piping into other tools)")
    parser.add_argument("--min-score", type=float, default=0.0, metavar="S",
                        help="only alerts with score >= S")
    parser.set_defaults(handler=run)


def wanted(alert: Any, min_score: float) -> bool:
    """An alert record worth showing: a JSON object whose score reaches ``min_score``."""
    if not isinstance(alert, dict):
        return False
    score = alert.get("score")
    return isinstance(score, int | float) and score >= min_score


def _table(rows: deque, total: int, topic: str) -> Any:
    from rich.table import Table

    table = Table(title=f"{topic}: last {len(rows)} of {total} alerts", expand=False)
    for name in ("time (UTC)", "src", "dst", "port", "proto", "score", "window", "label", "flow"):
        table.add_column(name)
    for alert in rows:
        stamp = alert.get("timestamp")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) if stamp else "-"
        label = alert.get("label") or "-"
        table.add_row(
            when,
            str(alert.get("src_ip")),
            str(alert.get("dst_ip") or "-"),
            str(alert.get("dst_port") if alert.get("dst_port") is not None else "-"),
            str(alert.get("protocol") if alert.get("protocol") is not None else "-"),
            f"{alert.get('score', 0):.3f}",
            str(alert.get("window_length", "-")),
            f"[green]{label}[/]" if label.upper() == "BENIGN" else label,
            str(alert.get("flow_id")),
        )
    return table


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from stream_ids.commands._shared import settings_with_bootstrap
    from stream_ids.kafka_probe import require_broker
    from stream_ids.topic_reader import read_topic

    settings = settings_with_bootstrap(args.bootstrap)
    require_broker(settings)
    topic = args.topic or settings.topic_alerts
    console = Console()
    rows: deque = deque(maxlen=max(1, args.last))
    total = 0
    if args.json:
        import sys

        import orjson

        # JSON lines: every matching alert (not only the last N), flushed as it comes.
        for _key, alert in read_topic(settings, topic, follow=args.follow):
            if wanted(alert, args.min_score):
                sys.stdout.buffer.write(orjson.dumps(alert) + b"\n")
                sys.stdout.flush()
        return 0
    if not args.follow:
        for _key, alert in read_topic(settings, topic):
            if wanted(alert, args.min_score):
                rows.append(alert)
                total += 1
        console.print(_table(rows, total, topic))
        return 0
    with Live(_table(rows, total, topic), console=console, refresh_per_second=4) as live:
        last = time.monotonic()
        for _key, alert in read_topic(settings, topic, follow=True):
            if wanted(alert, args.min_score):
                rows.append(alert)
                total += 1
            if time.monotonic() - last > 0.25:
                live.update(_table(rows, total, topic))
                last = time.monotonic()
    return 0
