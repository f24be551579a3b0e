"""``stream-ids stats``: the latest rolling statistics of every worker (and their sum)."""

from __future__ import annotations

import argparse
from typing import Any

from stream_ids.commands._shared import COUNTS, WINDOWS, combine


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("stats", help="show the latest statistics from the stats topic")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers")
    parser.add_argument("--topic", help="stats topic (default STREAM_IDS_TOPIC_STATS)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON lines")
    parser.set_defaults(handler=run)




def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def threshold_text(records: list[dict]) -> str:
    """The threshold in force, with the calibration's site and target: ``0.9993 lab-a@0.1%``
    (``-`` from workers older than these fields; ``mixed`` when workers disagree)."""
    shown = {
        (record.get("threshold"), record.get("calibration_site"), record.get("target_alert_rate"))
        for record in records
        if record.get("threshold") is not None
    }
    if len(shown) != 1:
        return "mixed" if shown else "-"
    threshold, site, target = shown.pop()
    text = f"{threshold:.6g}"
    if site:
        text += f" {site}" + (f"@{target:.3%}" if target is not None else "")
    return text


def run(args: argparse.Namespace) -> int:
    import orjson
    from rich.console import Console
    from rich.table import Table

    from stream_ids.commands._shared import settings_with_bootstrap
    from stream_ids.kafka_probe import require_broker
    from stream_ids.topic_reader import latest_stats

    settings = settings_with_bootstrap(args.bootstrap)
    require_broker(settings)
    latest = latest_stats(settings, args.topic)
    console = Console()
    if args.json:
        for record in latest.values():
            console.print(orjson.dumps(record).decode(), highlight=False)
        return 0
    if not latest:
        console.print("no statistics yet (is a worker running?)")
        return 1
    table = Table(title=f"{args.topic or settings.topic_stats}: latest statistics")
    for name in ("worker", "window", *COUNTS, "false alarm", "precision", "recall", "accuracy",
                 "alert rate", "threshold"):
        table.add_column(name)
    for window in WINDOWS:
        records = [r for (_w, win), r in sorted(latest.items()) if win == window]
        for record in records:
            row = combine([record])
            table.add_row(record["worker"], window, *(_fmt(row[n]) for n in COUNTS),
                          *(_fmt(row[n]) for n in ("false_alarm_rate", "precision", "recall",
                                                   "accuracy", "alert_rate")),
                          threshold_text([record]))
        if len(records) > 1:
            row = combine(records)
            table.add_row("[bold]all[/]", window, *(_fmt(row[n]) for n in COUNTS),
                          *(_fmt(row[n]) for n in ("false_alarm_rate", "precision", "recall",
                                                   "accuracy", "alert_rate")),
                          threshold_text(records))
    console.print(table)
    return 0
