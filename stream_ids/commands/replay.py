"""``stream-ids replay``: publish CICIDS2017 CSVs to the ``flows`` topic in timestamp order."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay CICIDS2017 CSV files into the flows topic",
        description="Read CICIDS2017 CSVs (any layout), sort by timestamp and publish each flow "
        "(key = source host) to Kafka. Exits non-zero if any delivery failed.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="flow files (.csv, .csv.gz) or folders of them (default: the shared "
                        "corrected CICIDS2017 rows, else the embedded sample)")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers")
    parser.add_argument("--topic", help="target topic (default: STREAM_IDS_TOPIC_FLOWS or flows)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, metavar="FLOWS_PER_S", help="constant send rate")
    pace.add_argument("--speedup", type=float, metavar="X",
                      help="follow the flows' own timestamps, X times faster than real time")
    pace.add_argument("--max", action="store_true", help="as fast as possible (the default)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N flows (by time)")
    parser.add_argument("--loop", type=int, default=1, metavar="K",
                        help="replay K times with shifted timestamps and fresh flow ids")
    parser.add_argument("--no-labels", action="store_true", help="do not send ground truth")
    parser.add_argument("--id-prefix", help="prefix of the flow ids (default: a random run id)")
    parser.add_argument("--host-batch", type=int, default=1, metavar="N",
                        help="send schema-3 micro-batches (by columns): up to N flows of one host")
    parser.add_argument("--json-features", action="store_true",
                        help="with --host-batch: features as JSON rows of numbers instead of one "
                        "base64 float64 block (slower to parse; docs/streaming.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from producers.replay import replay
    from stream_ids.commands._shared import flow_paths, settings_with_bootstrap
    from stream_ids.kafka_probe import require_broker

    console = Console(stderr=True)
    if args.loop < 1:
        console.print("[red]--loop must be >= 1[/]")
        return 2
    paths = flow_paths(args.paths, console)
    settings = settings_with_bootstrap(args.bootstrap)
    require_broker(settings)
    result = replay(
        paths,
        settings,
        topic=args.topic,
        rate=args.rate,
        speedup=args.speedup,
        limit=args.limit,
        loop=args.loop,
        labels=not args.no_labels,
        id_prefix=args.id_prefix,
        host_batch=max(1, args.host_batch),
        binary_features=not args.json_features,
        progress=not args.quiet,
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    for error in result.errors:
        console.print(f"[red]delivery error:[/] {error}")
    console.print(
        f"produced {result.produced}, delivered [green]{result.delivered}[/], "
        f"failed [{'red' if result.failed else 'green'}]{result.failed}[/] "
        f"in {result.seconds:.1f} s ({result.rate:,.0f} flows/s)"
    )
    return 1 if result.failed or result.delivered < result.produced else 0
