"""What a smaller CNN-LSTM would gain on this CPU: serving-path samples/s (encoder + head).

    python bench/model_size.py [--seconds 2]

Builds untrained models with ``model.cnn_lstm.make_model`` (same architecture family, smaller
widths; weights do not change the cost), splits them like the worker does
(:class:`stream_ids.scorer.SplitModel`) and times encoder(new flows) + head(cached windows) at
batch 512 and 4096, next to the shipped model. Accuracy of a smaller model is the model
work stream's question (retraining), not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = {
    "shipped (conv 32/64, embed 64, lstm 64)": None,
    "conv 16/32, embed 32, lstm 32": {"filters": (16, 32), "dense_units": 32, "lstm_units": 32},
    "conv 8/16, embed 16, lstm 16": {"filters": (8, 16), "dense_units": 16, "lstm_units": 16},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    from model.cnn_lstm import make_model
    from stream_ids.scorer import Scorer, SplitModel

    shipped = Scorer.load()
    window, features = shipped.window, shipped.n_inputs
    rng = np.random.default_rng(0)
    flows = rng.random((4096, features)).astype(np.float32)
    results = {}
    for name, config in VARIANTS.items():
        network = shipped.model if config is None else make_model((window, features), **config)
        split = SplitModel.of(network, window)
        if split is None or not split.agrees_with(network, features):
            raise SystemExit(f"{name}: the split does not reproduce the whole model")
        encodings = rng.random((4096, window, split.width)).astype(np.float32)
        lengths = np.full(4096, window)
        row = {"parameters": int(network.count_params())}
        for batch in (512, 4096):
            for _ in range(3):
                split.encode(flows[:batch])
                split.score(encodings[:batch], lengths[:batch])
            done, started = 0, time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                split.encode(flows[:batch])
                split.score(encodings[:batch], lengths[:batch])
                done += batch
            row[f"samples_per_s_batch_{batch}"] = round(done / (time.perf_counter() - started))
        results[name] = row
        print(name, row, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
