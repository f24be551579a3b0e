"""Would the mean of several seeds' scores be more robust than one seed? A probe (issue #16).

    python -m model.ensemble --model runs/a --model runs/b [--model ...] [--json FILE]

Five seeds of one recipe differ most on traffic none of them was trained on (docs/model-v2.md
section 7: held-out recall at 1% false alarms from 35% to 93% for the v2 recipe). Averaging
members is the usual cure for that variance; this measures it before anything is built. Each
model scores the pace probe's sources (:func:`model.pace.pace_sources`: the corrected CSE-CIC-
IDS2018, held out of every model, and half B of the benign captures) with its own transform and
windows; the ensemble's score is the mean (or the median) of its members' scores. Printed per
member and for the mean and the median: false alarms and recall at 0.5, recall at 1% false
alarms and ROC AUC (threshold-free). Nothing is shipped or written unless ``--json`` is given.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from model.generalization import _number, _percent, score_by_file, source_metrics
from model.pace import pace_sources

THRESHOLD = 0.5  # every model compared here ships 0.5 (manifest.json)


def metrics(truth: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """The report's own metrics (:func:`model.generalization.source_metrics`) at 0.5, the
    ones this probe prints."""
    frame = pd.DataFrame({"is_attack": truth, "label": ""})
    found = source_metrics(scores, frame, THRESHOLD)
    return {key: found[key] for key in ("false_alarm_rate", "recall", "recall_at_far", "roc_auc")}


def agreement(truth: np.ndarray, member_scores: Sequence[np.ndarray]) -> dict[str, Any]:
    """Benign flows that alert at 0.5 in every member and in at least one: false alarms that
    every seed shares are the data's, not one seed's (averaging cannot remove them)."""
    benign = truth == 0
    votes = np.sum([scores[benign] >= THRESHOLD for scores in member_scores], axis=0)
    return {
        "benign_flows": int(benign.sum()),
        "benign_alerting_in_every_member": int((votes == len(member_scores)).sum()),
        "benign_alerting_in_any_member": int((votes > 0).sum()),
    }


def combine(
    source: str, truth: np.ndarray, names: Sequence[str], member_scores: Sequence[np.ndarray]
) -> list[dict[str, Any]]:
    """One source's rows: each member, the members' mean score, their median score."""
    rows = [
        {"source": source, "model": name, **metrics(truth, scores)}
        for name, scores in zip(names, member_scores, strict=True)
    ]
    mean = np.mean(member_scores, axis=0)
    rows.append({
        "source": source,
        "model": f"mean of {len(member_scores)}",
        **metrics(truth, mean),
        **agreement(truth, member_scores),
    })
    # with an odd number of members the median is a majority vote at 0.5: one member's
    # near-certain false alarm is outvoted, where it can pull the mean over the threshold
    median = np.median(member_scores, axis=0)
    rows.append(
        {"source": source, "model": f"median of {len(member_scores)}", **metrics(truth, median)}
    )
    return rows


def measure(
    model_dirs: Sequence[Path], sources: dict[str, pd.DataFrame]
) -> list[dict[str, Any]]:
    """One row per source and member, then the members' mean and median score."""
    from stream_ids.scorer import Scorer

    scorers = [Scorer.load(model_dir, calibrated=False) for model_dir in model_dirs]
    names = [str(model_dir) for model_dir in model_dirs]
    rows: list[dict[str, Any]] = []
    for source, frame in sources.items():
        truth = frame["is_attack"].to_numpy()
        member_scores = [score_by_file(scorer.score_frame, frame) for scorer in scorers]
        rows.extend(combine(source, truth, names, member_scores))
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| source | model | false alarms @0.5 | recall @0.5 | recall @1% FAR | ROC AUC |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['source']} | {row['model']} | {_percent(row['false_alarm_rate'])} | "
            f"{_percent(row['recall'])} | {_percent(row['recall_at_far'])} | "
            f"{_number(row['roc_auc'])} |"
        )
    for row in rows:
        if row.get("benign_flows"):
            lines.append(
                f"\n{row['source']}: {row['benign_alerting_in_every_member']} of "
                f"{row['benign_flows']} benign flows alert in every member, "
                f"{row['benign_alerting_in_any_member']} in at least one."
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.ensemble", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, action="append", required=True, metavar="DIR")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if len(args.model) < 2:
        parser.error("give at least two --model directories")
    rows = measure(args.model, pace_sources())
    print(markdown(rows), end="")
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
