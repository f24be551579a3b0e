"""Baselines on the same split and the same per-flow features as the CNN-LSTM (window T = 1).

* linear SVM (``LinearSVC``, decision value as the score, threshold 0);
* random forest (100 trees, seeded);
* deep autoencoder trained on *benign* training flows only; the score is the reconstruction
  error and the threshold is chosen on the validation split (fewest errors).

``python -m model.baselines --data DIR --split random|time [--seed N] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from model.train import TrainConfig, choose_threshold, prepare
from stream_ids.metrics import binary_metrics


def _autoencoder(n_features: int, seed: int) -> Any:
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(n_features,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(n_features, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name="autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def run_baselines(
    data: list[str], split: str, seed: int, which: tuple[str, ...] = ("svm", "rf", "ae")
) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = TrainConfig(data=data, out="", window=1, split=split, seed=seed)
    prepared = prepare(config, log=lambda m: print(m, file=sys.stderr))
    x = prepared["windows"][:, 0, :]
    y = prepared["y"].astype(np.int8)
    idx = prepared["idx"]
    results: dict[str, Any] = {}
    if "svm" in which:
        from sklearn.svm import LinearSVC

        started = time.time()
        svm = LinearSVC(C=1.0, class_weight="balanced", random_state=seed, max_iter=5000)
        svm.fit(x[idx["train"]], y[idx["train"]])
        svm_scores = svm.decision_function(x[idx["test"]])
        results["linear_svm"] = binary_metrics(y[idx["test"]], svm_scores, 0.0)
        results["linear_svm"].update(_scores=svm_scores, _threshold=0.0)
        results["linear_svm"]["seconds"] = time.time() - started
    if "rf" in which:
        from sklearn.ensemble import RandomForestClassifier

        started = time.time()
        forest = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=seed)
        forest.fit(x[idx["train"]], y[idx["train"]])
        rf_scores = forest.predict_proba(x[idx["test"]])[:, 1]
        results["random_forest"] = binary_metrics(y[idx["test"]], rf_scores, 0.5)
        results["random_forest"].update(_scores=rf_scores, _threshold=0.5)
        results["random_forest"]["seconds"] = time.time() - started
    if "ae" in which:
        import keras

        started = time.time()
        benign_train = idx["train"][y[idx["train"]] == 0]
        benign_val = idx["val"][y[idx["val"]] == 0]
        auto = _autoencoder(x.shape[1], seed)
        auto.fit(
            x[benign_train],
            x[benign_train],
            validation_data=(x[benign_val], x[benign_val]),
            epochs=50,
            batch_size=128,
            verbose=0,
            callbacks=[
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=5, restore_best_weights=True
                )
            ],
        )

        def error(rows: np.ndarray) -> np.ndarray:
            return np.mean(
                (auto.predict(x[rows], batch_size=4096, verbose=0) - x[rows]) ** 2, axis=1
            )

        threshold = choose_threshold(y[idx["val"]], error(idx["val"]), default=float("inf"))
        ae_scores = error(idx["test"])
        results["autoencoder"] = binary_metrics(y[idx["test"]], ae_scores, threshold)
        results["autoencoder"].update(_scores=ae_scores, _threshold=threshold)
        results["autoencoder"]["seconds"] = time.time() - started
    frame = prepared["frame"]
    layouts = frame["layout"].to_numpy()[idx["test"]] if "layout" in frame else None
    if layouts is not None and len(np.unique(layouts)) > 1:
        for result in results.values():
            scores, threshold = result.pop("_scores"), result.pop("_threshold")
            result["by_layout"] = {
                str(name): binary_metrics(
                    y[idx["test"]][layouts == name], scores[layouts == name], threshold
                )
                for name in np.unique(layouts)
            }
    for result in results.values():
        result.pop("_scores", None)
        result.pop("_threshold", None)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.baselines", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--split", choices=("random", "time"), default="random")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--only", nargs="+", choices=("svm", "rf", "ae"), default=["svm", "rf", "ae"]
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    from stream_ids.loader import expand_flow_paths

    files = [str(p) for p in expand_flow_paths(args.data)]
    results = run_baselines(files, args.split, args.seed, tuple(args.only))
    for name, m in results.items():
        print(
            f"{name:14s} acc {m['accuracy']:.5f} prec {m['precision']:.5f} rec {m['recall']:.5f} "
            f"f1 {m['f1']:.5f} far {m['false_alarm_rate']:.5f} {m['confusion']}"
        )
        for layout, lm in m.get("by_layout", {}).items():
            print(
                f"  {layout}: acc {lm['accuracy']:.5f} f1 {lm['f1']} "
                f"far {lm['false_alarm_rate']} {lm['confusion']}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
