"""How much a model's verdicts depend on the pace of the network (issue #16).

    python -m model.pace --model model/shipped [--model runs/other ...] [--factors 0.1 1 10]

The same flows, as if every exchange ran ``factor`` times slower (times scaled, per-second rates
inversely: :func:`model.extractors.rescale_time`), scored at each model's own threshold. A
network with a longer round trip, or a slower host, changes the times and nothing else; a model
whose false alarms and recall move with the factor has learned the training network's clock.
Sources: the corrected CSE-CIC-IDS2018 (another network; held out of every model here) and half
B of the benign captures (``runs/captures/benign-B``, from ``python -m model.captures``), when
present. Prints a Markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.extractors import rescale_time
from model.generalization import (
    CAPTURES_DIR,
    REPO_ROOT,
    _mark_benign,
    _percent,
    load_extracted,
    score_by_file,
)
from stream_ids.datasets import shared_data_dir
from stream_ids.loader import load_flows

DEFAULT_FACTORS = (0.1, 1.0, 10.0)


def pace_sources() -> dict[str, pd.DataFrame]:
    """Source name -> canonical flows with ``source_file`` (windows never cross files)."""
    folder = shared_data_dir() / "other-datasets" / "cse-cic-ids2018-improved"
    held_out = load_flows(folder, provenance=True).rename(columns={"file": "source_file"})
    sources = {"cse-cic-ids2018-improved": held_out}
    captures = sorted((REPO_ROOT / CAPTURES_DIR / "benign-B").glob("*.csv"))
    if captures:
        frames = [load_extracted(path).assign(source_file=path.name) for path in captures]
        # ordinary app traffic (the data README)
        sources["pcap/benign half B"] = _mark_benign(pd.concat(frames, ignore_index=True))
    return sources


def measure(
    model_dirs: Sequence[Path], factors: Sequence[float], sources: dict[str, pd.DataFrame]
) -> list[dict[str, Any]]:
    """One row per model, source and factor: false-alarm rate and recall at the own threshold."""
    from stream_ids.scorer import Scorer

    rows: list[dict[str, Any]] = []
    for model_dir in model_dirs:
        scorer = Scorer.load(model_dir, calibrated=False)
        for name, frame in sources.items():
            truth = frame["is_attack"].to_numpy()
            for factor in factors:
                paced = rescale_time(frame, np.full(len(frame), factor))
                alerts = score_by_file(scorer.score_frame, paced) >= scorer.threshold
                benign, attack = truth == 0, truth == 1
                rows.append({
                    "model": str(model_dir),
                    "source": name,
                    "factor": factor,
                    "false_alarm_rate": float(alerts[benign].mean()) if benign.any() else None,
                    "recall": float(alerts[attack].mean()) if attack.any() else None,
                })
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| model | source | pace (x slower) | false alarms | recall |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['model']} | {row['source']} | x{row['factor']:g} | "
        f"{_percent(row['false_alarm_rate'])} | {_percent(row['recall'])} |"
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.pace", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, action="append", required=True, metavar="DIR")
    parser.add_argument("--factors", type=float, nargs="+", default=list(DEFAULT_FACTORS))
    args = parser.parse_args(argv)
    print(markdown(measure(args.model, args.factors, pace_sources())), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
