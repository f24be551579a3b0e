"""``stream-ids evaluate``: score labelled flows of any layout with a model directory."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score labelled CSVs with a model and report metrics"
    )
    parser.add_argument(
        "--model", default=None, metavar="DIR", help="model directory (default: the shipped model)"
    )
    parser.add_argument(
        "--data", nargs="+", required=True, metavar="PATH", help="CSV files or folders"
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="write the metrics here")
    parser.set_defaults(handler=run)


def print_metrics(metrics: dict[str, Any], title: str = "metrics") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    from stream_ids.metrics import METRIC_KEYS

    # The scalar metrics; the confusion counts and n follow as their own rows.
    for key in (name for name in METRIC_KEYS if name not in ("confusion", "n")):
        value = metrics.get(key)
        table.add_row(key, "null" if value is None else f"{value:.6f}")
    for key, value in metrics.get("confusion", {}).items():
        table.add_row(key, str(value))
    table.add_row("n", str(metrics.get("n")))
    if "threshold" in metrics:
        table.add_row("threshold", f"{metrics['threshold']:.6g}")
    Console().print(table)


def evaluate(model_dir: str | None, paths: list[str]) -> dict[str, Any]:
    import numpy as np

    from stream_ids.loader import load_flows
    from stream_ids.metrics import binary_metrics
    from stream_ids.scorer import Scorer

    scorer = Scorer.load(model_dir)
    frame = load_flows(paths)
    scores = scorer.score_frame(frame)
    labels = frame["is_attack"].to_numpy()
    labelled = labels >= 0
    metrics = binary_metrics(labels[labelled], scores[labelled], scorer.threshold)
    metrics["unlabelled"] = int((~labelled).sum())
    metrics["model_version"] = scorer.model_version
    metrics["window"] = scorer.window
    metrics["data"] = [str(p) for p in paths]
    _ = np
    return metrics


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from stream_ids.commands.train import expand_paths

    metrics = evaluate(args.model, expand_paths(args.data))
    print_metrics(metrics, title=f"{metrics['model_version']} on {metrics['n']} flows")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0
