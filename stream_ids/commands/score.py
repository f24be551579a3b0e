"""``stream-ids score``: per-flow scores and verdicts of flow files, without Kafka.

The worker's rules (:mod:`stream_ids.offline`): a flow the worker would dead-letter gets the
verdict ``dead_letter`` and its reason; every other flow is scored in its source host's window
and gets ``alert`` or ``benign``. One output row per input flow, in input order.
"""

from __future__ import annotations

import argparse
from typing import Any

OUTPUT_COLUMNS = (
    "file", "row", "flow_id", "src_ip", "dst_ip", "dst_port", "protocol", "timestamp", "label",
    "score", "verdict", "reason",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score flow files offline: one verdict per flow to a CSV or JSON-lines file",
        description="Score CICFlowMeter flow files (any layout, labelled or not) with a model, "
        "as the worker would, and write one row per flow: score, verdict (alert, benign or "
        "dead_letter) and the dead-letter reason.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="flow files (.csv, .csv.gz) or folders of them")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="verdicts file: .csv, or .jsonl for JSON lines")
    parser.add_argument(
        "--model", default=None, metavar="DIR", help="model directory (default: the shipped model)"
    )
    parser.set_defaults(handler=run)


def verdict_frame(model_dir: str | None, paths: list[Any]) -> Any:
    """The verdicts of every flow of ``paths`` as a DataFrame of :data:`OUTPUT_COLUMNS`."""
    import pandas as pd

    from stream_ids.loader import load_flows
    from stream_ids.offline import score_frame
    from stream_ids.scorer import Scorer

    scorer = Scorer.load(model_dir)
    frame = load_flows(paths, provenance=True)
    scores = score_frame(scorer, frame)
    out = pd.DataFrame({
        "file": frame["file"],
        "row": frame.groupby("file", sort=False).cumcount().to_numpy(),
        **{name: frame[name] for name in OUTPUT_COLUMNS[2:9]},
        "score": scores.score,
        "verdict": scores.verdict,
        "reason": scores.reason,
    })
    out.attrs["model_version"] = scorer.model_version
    out.attrs["threshold"] = scorer.threshold
    return out


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from stream_ids.errors import ConfigurationError

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ConfigurationError(f"--out {out}: use a .csv or .jsonl file name")
    verdicts = verdict_frame(args.model, args.paths)
    if suffix == ".csv":
        verdicts.to_csv(out, index=False)
    else:
        verdicts.to_json(out, orient="records", lines=True)
    counts = verdicts["verdict"].value_counts().to_dict()
    Console(stderr=True, soft_wrap=True).print(
        f"{len(verdicts)} flows -> {out}: {counts.get('alert', 0)} alert, "
        f"{counts.get('benign', 0)} benign, {counts.get('dead_letter', 0)} dead_letter "
        f"(model {verdicts.attrs['model_version']}, threshold "
        f"{verdicts.attrs['threshold']:.3g})",
        highlight=False,
    )
    return 0
