"""``stream-ids evaluate``: score flow files of any layout with a model directory.

Per file: flows, dead letters (flows the worker would refuse), alerts, alert rate and score
quantiles; where a file is labelled, the metrics of :func:`stream_ids.metrics.binary_metrics`
too. Over all labelled flows: the same metrics (top-level keys of the JSON, as before).
Unlabelled files (the Python ``cicflowmeter``, Java CICFlowMeter's ``NeedManualLabel``) are
normal input; empty files are skipped with a warning.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score flow files with a model: metrics where labelled, alert rates everywhere",
    )
    parser.add_argument(
        "--model", default=None, metavar="DIR", help="model directory (default: the shipped model)"
    )
    parser.add_argument(
        "--data", nargs="+", default=None, metavar="PATH",
        help="flow files (.csv, .csv.gz) or folders of them (default: the shared corrected "
        "CICIDS2017 rows, else the embedded sample)",
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="write the results here")
    parser.set_defaults(handler=run)



def print_files(files: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("file", "layout", "flows", "dead letters", "alerts", "alert rate",
                   "p50 / p99 score", "recall", "false-alarm rate"):
        table.add_column(column, justify="left" if column in ("file", "layout") else "right",
                         no_wrap=True)

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2%}"

    for entry in files:
        quantiles = entry.get("score_quantiles") or {}
        metrics = entry.get("metrics") or {}
        table.add_row(
            entry["file"].rsplit("/", 1)[-1],
            entry.get("layout", ""),
            str(entry["flows"]),
            str(entry.get("dead_letters", 0)),
            str(entry.get("alerts", 0)),
            rate(entry.get("alert_rate")),
            f"{quantiles['p50']:.3f} / {quantiles['p99']:.3f}" if quantiles else "n/a",
            rate(metrics.get("recall")),
            rate(metrics.get("false_alarm_rate")),
        )
    # Rich assumes 80 columns when writing to a pipe or a file: the table needs more.
    console = Console()
    Console(width=max(console.width, 140)).print(table)


def evaluate(model_dir: str | None, paths: list[Any]) -> dict[str, Any]:
    """Score ``paths`` together (a host's window may span files) and report per file."""
    import warnings

    from stream_ids.loader import EmptyFileWarning, expand_flow_paths, load_flows
    from stream_ids.metrics import binary_metrics
    from stream_ids.offline import score_frame, traffic_summary
    from stream_ids.scorer import Scorer

    scorer = Scorer.load(model_dir)
    files = [str(path) for path in expand_flow_paths(paths)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmptyFileWarning)
        frame = load_flows(files, provenance=True)
    skipped = [str(w.message) for w in caught if issubclass(w.category, EmptyFileWarning)]
    for message in skipped:
        _warn(message)
    scores = score_frame(scorer, frame)
    labels = frame["is_attack"].to_numpy()
    per_file = []
    for name in files:
        in_file = (frame["file"] == name).to_numpy()
        if not in_file.any():
            per_file.append({"file": name, "flows": 0, "skipped": "empty"})
            continue
        entry: dict[str, Any] = {"file": name, "layout": str(frame["layout"][in_file].iloc[0])}
        entry.update(traffic_summary(scores, in_file))
        labelled = in_file & scores.valid & (labels >= 0)
        entry["labelled"] = int(labelled.sum())
        if labelled.any():
            entry["metrics"] = binary_metrics(labels[labelled], scores.score[labelled],
                                              scorer.threshold)
        per_file.append(entry)
    labelled = scores.valid & (labels >= 0)
    result: dict[str, Any] = {}
    if labelled.any():
        result.update(binary_metrics(labels[labelled], scores.score[labelled], scorer.threshold))
    result.update(traffic_summary(scores))
    result.update(
        labelled=int(labelled.sum()),
        unlabelled=int((labels < 0).sum()),
        model_version=scorer.model_version,
        window=scorer.window,
        threshold=float(scorer.threshold),
        data=[str(p) for p in paths],
        files=per_file,
        skipped=skipped,
    )
    return result


def _warn(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[yellow]warning:[/] {message}", highlight=False)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from stream_ids.datasets import default_flow_paths

    paths = args.data if args.data else default_flow_paths()
    result = evaluate(args.model, paths)
    title = f"{result['model_version']} on {result['flows']} flows"
    print_files(result["files"], title)
    if result["labelled"]:
        from stream_ids.commands._shared import print_metrics

        print_metrics(result, title=f"{result['labelled']} labelled flows")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0
