"""A tiny training run produces loadable, hash-checked artifacts; evaluate; the shipped model."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stream_ids.datasets import shared_data_dir
from stream_ids.errors import ArtifactError
from stream_ids.loader import load_flows
from stream_ids.metrics import METRIC_KEYS, binary_metrics

ONE_CLASS = "cicids2017-original/Friday-Afternoon-DDoS.head.csv"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model.train import Hyper, TrainConfig, train

    folder = tmp_path_factory.mktemp("tiny")
    improved = shared_data_dir() / "cicids2017-improved"
    parts = [
        pd.read_csv(improved / name).head(rows)
        for name, rows in (("BENIGN.csv", 200), ("DDoS.csv", 150), ("Portscan.csv", 100))
    ]
    data = folder / "tiny.csv"
    pd.concat(parts).to_csv(data, index=False)
    out = folder / "model"
    train(
        TrainConfig(
            data=[str(data)],
            out=str(out),
            window=4,
            epochs=1,
            verbose=0,
            # not the shipped widths: the options must reach the model (bench/model_size.py)
            hyper=Hyper(filters=(8, 16), lstm_units=16, dense_units=24),
        ),
        log=lambda m: None,
    )
    return out


def test_tiny_training_writes_every_artifact(tiny_model: Path) -> None:
    for name in ("model.keras", "transform.json", "manifest.json", "metrics.json", "MODEL_CARD.md"):
        assert (tiny_model / name).is_file(), name
    assert {"accuracy.png", "loss.png", "confusion.png"} <= {
        p.name for p in (tiny_model / "plots").iterdir()
    }
    manifest = json.loads((tiny_model / "manifest.json").read_text())
    assert manifest["window"] == 4 and 0 < manifest["threshold"] < 1
    metrics = json.loads((tiny_model / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(metrics)


def test_scorer_loads_and_scores(tiny_model: Path) -> None:
    from stream_ids.scorer import Scorer

    scorer = Scorer.load(tiny_model)
    assert scorer.window == 4 and scorer.model_version.startswith("cnn-lstm-T4")
    assert scorer.enable_split() and scorer.state_width == 24  # the per-flow embedding width
    assert scorer.model.get_layer("lstm").units == 16
    frame = load_flows(shared_data_dir() / "cicids2017-original/Friday-Afternoon-DDoS.sample.csv")
    scores = scorer.score_frame(frame)
    assert scores.shape == (len(frame),) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_allclose(scorer.score_frame(frame, chunk_rows=97), scores, atol=1e-5)
    # the streaming path: per-host history -> the same windows and scores
    from stream_ids.sequences import make_windows

    transformed = scorer.transform.transform_many(frame)
    windows, _ = make_windows(transformed, frame["src_ip"], frame["timestamp"], scorer.window)
    np.testing.assert_allclose(scorer.score_windows(windows[:5]), scores[:5], atol=1e-5)


@pytest.mark.parametrize("name", ["model.keras", "transform.json"])
def test_tampered_artifacts_are_refused(tiny_model: Path, tmp_path: Path, name: str) -> None:
    from stream_ids.scorer import Scorer

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    with (copy / name).open("ab") as handle:
        handle.write(b" ")
    with pytest.raises(ArtifactError, match=name.replace(".", r"\.")):
        Scorer.load(copy)


def test_evaluate_one_class_file_gives_nulls(tiny_model: Path) -> None:
    from stream_ids.commands.evaluate import evaluate

    metrics = evaluate(str(tiny_model), [str(shared_data_dir() / ONE_CLASS)])
    assert metrics["n"] == 299 and metrics["confusion"]["tp"] + metrics["confusion"]["fn"] == 0
    assert metrics["recall"] is None and metrics["f1"] is None and metrics["roc_auc"] is None
    assert metrics["false_alarm_rate"] is not None


def test_metrics_null_without_both_classes() -> None:
    metrics = binary_metrics([1, 1, 1], [0.9, 0.2, 0.7], 0.5)
    assert metrics["false_alarm_rate"] is None and metrics["roc_auc"] is None
    assert metrics["confusion"] == {"tp": 2, "fp": 0, "tn": 0, "fn": 1}


def test_shipped_model_loads_and_hashes_match() -> None:
    from stream_ids.artifacts import sha256_file, shipped_model_dir
    from stream_ids.scorer import Scorer

    directory = shipped_model_dir()
    manifest = json.loads((directory / "manifest.json").read_text())
    for name in ("model.keras", "transform.json"):
        assert sha256_file(directory / name) == manifest["sha256"][name]
    scorer = Scorer.load()
    assert scorer.window == manifest["window"] and scorer.threshold == manifest["threshold"]
    frame = load_flows(shared_data_dir() / "cicids2017-original/Friday-Afternoon-DDoS.sample.csv")
    assert scorer.score_frame(frame.head(50)).shape == (50,)


_SECOND = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]


@pytest.mark.skipif(
    not _SECOND, reason="neither jax nor torch is installed (pip install 'stream-ids[backends]')"
)
def test_model_loads_under_a_second_backend(tiny_model: Path) -> None:
    from stream_ids.scorer import Scorer

    scorer = Scorer.load(tiny_model)
    rng = np.random.default_rng(1)
    windows = rng.random((6, scorer.window, scorer.n_inputs)).astype(np.float32)
    windows[:3, :2] = 0.0  # padding
    np.save(tiny_model.parent / "windows.npy", windows)
    code = (
        "import json, sys, numpy as np, keras\n"
        "from stream_ids.scorer import Scorer\n"
        f"s = Scorer.load({str(tiny_model)!r})\n"
        f"w = np.load({str(tiny_model.parent / 'windows.npy')!r})\n"
        "out = {'backend': keras.backend.backend(), 'scores': s.score_windows(w).tolist()}\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": _SECOND[0], "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == _SECOND[0]
    np.testing.assert_allclose(result["scores"], scorer.score_windows(windows), atol=1e-4)


def test_mixed_layouts_split_within_each_layout_and_window_per_layout() -> None:
    from model.train import load_with_layout, split_indices, window_hosts

    original = shared_data_dir() / "cicids2017-original"
    improved = shared_data_dir() / "cicids2017-improved"
    paths = [
        str(original / "Friday-Afternoon-DDoS.sample.csv"),
        str(original / "Friday-Afternoon-DDoS.head.csv"),
        str(improved / "Heartbleed.csv"),
    ]
    frame = load_with_layout(paths)
    assert set(frame["layout"]) == {"cicids2017-trafficlabelling", "corrected-cicflowmeter"}
    idx = split_indices(frame, "random", 7)
    test = frame.iloc[idx["test"]]
    counts = test.groupby(["layout", "is_attack"]).size().to_dict()
    # 1,000 DDoS and 299 benign original rows: 15% of each in test (stratified per layout).
    assert counts[("cicids2017-trafficlabelling", 1)] == 150
    assert counts[("cicids2017-trafficlabelling", 0)] == 45
    hosts = window_hosts(frame)
    # 172.16.0.1 appears in both layouts but never shares a window across them.
    improved_hosts = hosts[frame["layout"] == "corrected-cicflowmeter"]
    assert improved_hosts.str.startswith("corrected-cicflowmeter|").all()
    single = load_with_layout(paths[:1])
    assert window_hosts(single).equals(single["src_ip"])


def _site_and_capture(
    tmp_path: Path, site_name: str, capture_name: str, rows_per_class: int
) -> tuple[Path, Path]:
    """Two source folders: the site's ``a.csv`` (benign and DDoS rows of the corrected
    CICIDS2017), and an empty one for captured flows."""
    improved = shared_data_dir() / "cicids2017-improved"
    site, capture = tmp_path / site_name, tmp_path / capture_name
    site.mkdir()
    capture.mkdir()
    pd.concat([pd.read_csv(improved / "BENIGN.csv").head(rows_per_class),
               pd.read_csv(improved / "DDoS.csv").head(rows_per_class)]).to_csv(
        site / "a.csv", index=False)
    return site, capture


def test_stable_features_benign_files_and_balanced_sources(tmp_path: Path) -> None:
    """--features stable, --benign and --balance-sources reach the artifacts and the scorer."""
    from model.features import STABLE_FEATURES
    from model.train import TrainConfig, load_sources, source_weights, train
    from stream_ids.scorer import Scorer

    improved = shared_data_dir() / "cicids2017-improved"
    first, second = _site_and_capture(tmp_path, "site-a", "capture-b", rows_per_class=150)
    # An attack file passed as --benign: its flows count as benign whatever their label says.
    pd.read_csv(improved / "Portscan.csv").head(60).to_csv(second / "b.csv", index=False)
    # And flows with no label at all (what the Python cicflowmeter writes).
    unlabelled = pd.read_csv(improved / "BENIGN.csv").iloc[150:190]
    unlabelled.drop(columns=["Label"]).to_csv(second / "c.csv", index=False)
    frame = load_sources([str(first / "a.csv")], [str(second / "b.csv")])
    assert set(frame["source"]) == {"site-a", "capture-b"}
    assert (frame.loc[frame["source"] == "capture-b", "is_attack"] == 0).all()
    weights = source_weights(frame)
    assert weights.mean() == pytest.approx(1.0)
    by_source = {name: weights[(frame["source"] == name).to_numpy()].sum()
                 for name in ("site-a", "capture-b")}
    assert by_source["site-a"] == pytest.approx(by_source["capture-b"])  # 300 rows weigh as 60
    out = tmp_path / "model"
    train(TrainConfig(data=[str(first / "a.csv")], benign=[str(second / "b.csv"),
                                                             str(second / "c.csv")],
                      out=str(out), window=2, epochs=1, verbose=0, features="stable",
                      balance_sources=True),
          log=lambda m: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["feature_names"] == list(STABLE_FEATURES)
    assert manifest["training"]["sources"] == {"site-a": 300, "capture-b": 100}
    scorer = Scorer.load(out)
    assert scorer.transform.feature_names == STABLE_FEATURES
    assert scorer.score_frame(load_flows(first / "a.csv")).shape == (300,)
    # The generalization report rebuilds the same test split (--benign rows included), so its
    # test-split numbers are the training's, not a re-split that mixes in training rows.
    from model.generalization import cnn_lstm_candidate

    candidate, _ = cnn_lstm_candidate(out)
    assert candidate.test_split is not None
    trained = json.loads((out / "metrics.json").read_text())
    assert candidate.test_split["flows"] == sum(trained["confusion"].values())
    assert candidate.test_split["false_alarms"] == trained["confusion"]["fp"]
    assert candidate.test_split["detected"] == trained["confusion"]["tp"]


def test_benign_weight_folds_class_weights_into_sample_weights(tmp_path: Path) -> None:
    """--benign-weight W: each --benign flow weighs W times a dataset flow, and the class weights
    (which Keras refuses beside sample weights) are folded in; the training runs."""
    from model.train import TrainConfig, load_sources, row_weights, train

    improved = shared_data_dir() / "cicids2017-improved"
    site, capture = _site_and_capture(tmp_path, "site", "capture", rows_per_class=100)
    pd.read_csv(improved / "BENIGN.csv").iloc[100:130].to_csv(capture / "b.csv", index=False)
    frame = load_sources([str(site / "a.csv")], [str(capture / "b.csv")])
    plain = TrainConfig(data=[], out="unused", benign=["x"])
    assert row_weights(frame, plain) is None  # W = 1: no weights
    weights = row_weights(frame, TrainConfig(data=[], out="unused", benign=["x"], benign_weight=20))
    assert weights is not None
    from_capture = (frame["source"] == "capture").to_numpy()
    assert (weights[from_capture] == 20.0).all() and (weights[~from_capture] == 1.0).all()
    out = tmp_path / "model"
    train(TrainConfig(data=[str(site / "a.csv")], benign=[str(capture / "b.csv")], out=str(out),
                      window=2, epochs=1, verbose=0, benign_weight=20.0),
          log=lambda m: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["benign_weight"] == 20.0
    assert set(manifest["training"]["class_weight"]) == {"0", "1"}
