"""``stream-ids relay``: follow live CICFlowMeter CSV output into the flows topic."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "relay",
        help="follow a growing CICFlowMeter CSV (or a folder of them) into the flows topic",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--follow", type=Path, metavar="FILE",
                        help="a CSV that CICFlowMeter appends to (tail -F: truncation, rotation)")
    source.add_argument("--watch", type=Path, metavar="DIR",
                        help="a folder where new CICFlowMeter CSVs appear")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers")
    parser.add_argument("--topic", help="target topic (default STREAM_IDS_TOPIC_FLOWS)")
    parser.add_argument("--from-end", action="store_true",
                        help="--follow: skip the rows already in the file")
    parser.add_argument("--idle-exit", type=float, metavar="S",
                        help="exit after S seconds without new rows (default: run until Ctrl-C)")
    parser.add_argument("--poll", type=float, default=0.2, metavar="S", help="poll interval")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from producers.relay import relay
    from stream_ids.commands._shared import settings_with_bootstrap
    from stream_ids.errors import SchemaError
    from stream_ids.kafka_probe import require_broker

    console = Console(stderr=True)
    if args.follow is not None and args.follow.is_dir():
        raise SchemaError(f"--follow {args.follow} is a folder: --watch follows the CSVs that "
                          "appear in a folder, --follow one growing file")
    settings = settings_with_bootstrap(args.bootstrap)
    require_broker(settings)
    source = args.follow or args.watch
    console.print(f"relaying {source} -> {args.topic or settings.topic_flows} (Ctrl-C stops)")
    try:
        result = relay(
            settings, follow=args.follow, watch=args.watch, topic=args.topic,
            poll_s=args.poll, idle_exit_s=args.idle_exit, from_start=not args.from_end,
        )
    except KeyboardInterrupt:
        return 130
    for error in result.errors:
        console.print(f"[red]error:[/] {error}")
    console.print(f"produced {result.produced}, delivered {result.delivered}, "
                  f"failed {result.failed}, unparsable rows dead-lettered {result.dead_lettered}")
    return 1 if result.failed else 0
