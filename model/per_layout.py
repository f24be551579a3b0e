"""Per-CSV-layout test metrics of model directories on the layout-aware split of ``--data``.

``python -m model.per_layout --model model/shipped runs/X --data FILES...`` rebuilds the split of
:func:`model.train.split_indices` (stratified within each layout, seed 7), scores each layout's
flows on their own (windows per source host within that layout, as ``stream-ids evaluate`` does)
and prints the metrics of the test rows and of all rows, per layout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model.train import load_with_layout, split_indices
    from stream_ids.loader import expand_flow_paths
    from stream_ids.metrics import binary_metrics
    from stream_ids.scorer import Scorer

    parser = argparse.ArgumentParser(prog="python -m model.per_layout", description=__doc__)
    parser.add_argument("--model", nargs="+", required=True, metavar="DIR")
    parser.add_argument("--data", nargs="+", required=True, metavar="PATH")
    parser.add_argument("--split", choices=("random", "time"), default="random")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    frame = load_with_layout([str(p) for p in expand_flow_paths(args.data)])
    idx = split_indices(frame, args.split, args.seed)
    test = np.zeros(len(frame), dtype=bool)
    test[idx["test"]] = True
    out: dict[str, dict[str, dict[str, object]]] = {}
    for model_dir in args.model:
        scorer = Scorer.load(model_dir)
        out[model_dir] = {}
        for layout in sorted(frame["layout"].unique()):
            rows = (frame["layout"] == layout).to_numpy()
            part = frame.loc[rows].reset_index(drop=True)
            scores = scorer.score_frame(part)
            y = part["is_attack"].to_numpy()
            for name, chosen in (("test", test[rows]), ("all", np.ones(len(part), bool))):
                m = binary_metrics(y[chosen], scores[chosen], scorer.threshold)
                out[model_dir][f"{layout}/{name}"] = m
                print(
                    f"{model_dir} {layout} {name}: n {m['n']} acc {m['accuracy']:.4%} "
                    f"f1 {m['f1']} far {m['false_alarm_rate']} {m['confusion']}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
