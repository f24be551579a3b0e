"""Train the CNN-LSTM on canonical flows and write a self-checking model directory.

``DIR/model.keras``, ``DIR/transform.json``, ``DIR/manifest.json`` (sha256 of both, window,
threshold, feature names, model_version, data summary, keras version), ``DIR/metrics.json`` (test
split, the keys of :func:`stream_ids.metrics.binary_metrics`), ``DIR/MODEL_CARD.md`` and
``DIR/plots/*.png``.

Splits (70/15/15):

``random``  stratified on ``is_attack``, seeded (as in the paper).
``time``    within each (local) day, the earliest 70% of flows train, the next 15% validate, the
            last 15% test.

Windows are built over all flows (a flow's history may come from an earlier split, as it would
in deployment) and each example goes to the split of its last flow.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stream_ids import artifacts
from stream_ids.errors import ConfigurationError, SchemaError
from stream_ids.layouts import PYTHON_CICFLOWMETER
from stream_ids.loader import (
    count_feature_duplicates,
    drop_exact_duplicates,
    load_flows,
)
from stream_ids.metrics import binary_metrics
from stream_ids.sequences import make_windows
from stream_ids.transform import PROTOCOL_SLOTS, FlowTransform

LOCAL_UTC_OFFSET_S = 3 * 3600.0  # CICIDS2017 local time = UTC - 3 h; days split at local midnight
DEFAULT_WINDOW = 8


@dataclass
class Hyper:
    learning_rate: float = 1e-3
    batch_size: int = 256
    filters: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    lstm_units: int = 64
    dropout: float = 0.3
    dense_units: int = 64  # the per-flow embedding width (the cached encoding per flow)


@dataclass
class TrainConfig:
    data: list[str]
    out: str
    window: int = DEFAULT_WINDOW
    split: str = "random"
    seed: int = 7
    epochs: int = 20
    patience: int = 3
    grid: bool = False
    log1p: bool = True
    protocol_mask_fraction: float = 0.1
    class_weight: bool = True
    tune_threshold: bool = False
    # "all" (the 76 features) or "stable" (model.features.STABLE_FEATURES).
    features: str = "all"
    # Files whose flows are all benign whatever they carry (e.g. a site's own captures through
    # the Python cicflowmeter, which writes no label).
    benign: list[str] = field(default_factory=list)
    # Weigh every source (a file's folder) the same, and within it benign and attack the same,
    # instead of one class weight over all rows: no capture dominates.
    balance_sources: bool = False
    # Each ``benign`` flow weighs this many CSV flows (a few hundred captured flows are
    # otherwise lost among tens of thousands of dataset rows).
    benign_weight: float = 1.0
    # Extractor augmentation: each flow also as these extractors would have written it
    # (model.extractors.AUGMENTATIONS), in both classes, so that no extractor's look is learned
    # as a class. The copies join the train and validation splits of their originals; the test
    # split stays the original rows.
    augment_extractors: list[str] = field(default_factory=list)
    # Time-scale jitter of those copies: each copied host's flows run ``s`` times slower, ``s``
    # log-uniform in [1/F, F] (model.extractors.rescale_time); 1: none.
    augment_timescale: float = 1.0
    verbose: int = 2
    hyper: Hyper = field(default_factory=Hyper)
    command: str = ""


# -- splits ------------------------------------------------------------------------------------
def split_indices(frame: pd.DataFrame, mode: str, seed: int) -> dict[str, np.ndarray]:
    """Row indices of the train/val/test splits (70/15/15)."""
    n = len(frame)
    if mode == "random":
        from sklearn.model_selection import train_test_split

        index = np.arange(n)
        labels = frame["is_attack"].to_numpy().astype(np.int64)
        group = "source" if "source" in frame else "layout"
        if group in frame and frame[group].nunique() > 1:
            # Several sources (or layouts): the same stratified split within each (x label).
            codes = pd.factorize(frame[group])[0].astype(np.int64)
            labels = codes * 2 + labels
        counts = np.bincount(labels)
        counts = counts[counts > 0]
        stratify = labels if len(counts) > 1 and counts.min() >= 4 else None
        train, rest = train_test_split(index, test_size=0.30, random_state=seed, stratify=stratify)
        rest_strat = labels[rest] if stratify is not None else None
        val, test = train_test_split(rest, test_size=0.50, random_state=seed, stratify=rest_strat)
        return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    if mode == "time":
        stamps = frame["timestamp"].to_numpy(dtype=np.float64)
        if np.isnan(stamps).any():
            raise SchemaError("--split time needs a timestamp on every flow")
        day = np.floor((stamps - LOCAL_UTC_OFFSET_S) / 86400.0).astype(np.int64)
        order = np.lexsort((np.arange(n), stamps, day))
        parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
        sorted_day = day[order]
        for value in np.unique(sorted_day):
            rows = order[sorted_day == value]
            a, b = round(0.70 * len(rows)), round(0.85 * len(rows))
            parts["train"].append(rows[:a])
            parts["val"].append(rows[a:b])
            parts["test"].append(rows[b:])
        return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}
    raise ValueError(f"unknown split {mode!r} (random or time)")


def mask_protocol(windows: np.ndarray, rows: np.ndarray, n_features: int) -> None:
    """Set the protocol one-hot of every non-padding step of ``rows`` to *unknown* (in place)."""
    if len(rows) == 0:
        return
    block = windows[rows]
    valid = block.any(axis=2)
    proto = block[:, :, n_features:]
    proto[valid] = 0.0
    proto[valid, PROTOCOL_SLOTS.index("unknown")] = 1.0
    block[:, :, n_features:] = proto
    windows[rows] = block


def choose_threshold(y: np.ndarray, scores: np.ndarray, default: float = 0.5) -> float:
    """The threshold minimising the *balanced* validation error (false-alarm rate + miss rate,
    so that the 13%-benign sample does not discount false alarms) over score quantiles;
    ``default`` when it is among the best, else the middle of the best interval."""
    y = np.asarray(y).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0 or y.min() == y.max():
        return float(default)
    candidates = np.unique(np.r_[default, np.quantile(scores, np.linspace(0, 1, 2001))])
    positives, negatives = scores[y], scores[~y]
    errors = np.array([np.mean(negatives >= t) + np.mean(positives < t) for t in candidates])
    best = candidates[np.isclose(errors, errors.min(), rtol=0, atol=1e-12)]
    if np.any(np.isclose(best, default)):
        return float(default)
    return float((best.min() + best.max()) / 2)


# -- artifacts ---------------------------------------------------------------------------------
def _plots(
    out: Path, history: dict[str, list[float]], y: np.ndarray, scores: np.ndarray, threshold: float
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = []
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key in ("accuracy", "loss"):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(epochs, history.get(key, []), marker="o", label="train")
        ax.plot(epochs, history.get(f"val_{key}", []), marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(f"{key} per epoch")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plots / f"{key}.png", dpi=80)
        plt.close(fig)
        written.append(f"{key}.png")
    pred = scores >= threshold
    matrix = np.array(
        [
            [np.sum(~pred & (y == 0)), np.sum(pred & (y == 0))],
            [np.sum(~pred & (y == 1)), np.sum(pred & (y == 1))],
        ]
    )
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="black")
    ax.set_xticks([0, 1], ["benign", "attack"])
    ax.set_yticks([0, 1], ["benign", "attack"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"test confusion (threshold {threshold:.3g})")
    fig.tight_layout()
    fig.savefig(plots / "confusion.png", dpi=80)
    plt.close(fig)
    written.append("confusion.png")
    if 0 < y.sum() < len(y):
        fpr, tpr, _ = roc_curve(y, scores)
        fig, ax = plt.subplots(figsize=(4, 3.5))
        ax.plot(fpr, tpr)
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlabel("false-alarm rate")
        ax.set_ylabel("recall")
        ax.set_title("test ROC")
        fig.tight_layout()
        fig.savefig(plots / "roc.png", dpi=80)
        plt.close(fig)
        precision, recall, _ = precision_recall_curve(y, scores)
        fig, ax = plt.subplots(figsize=(4, 3.5))
        ax.plot(recall, precision)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("test precision-recall")
        fig.tight_layout()
        fig.savefig(plots / "precision_recall.png", dpi=80)
        plt.close(fig)
        written += ["roc.png", "precision_recall.png"]
    return written


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4%}" if isinstance(value, float) else str(value)


def _by_layout_rows(metrics: dict[str, Any]) -> list[str]:
    """Per-layout test rows (only when the training data mixed CSV layouts)."""
    by_layout = metrics.get("by_layout") or {}
    if not by_layout:
        return []
    lines = [
        "",
        "### Per CSV layout (test split)",
        "| layout | accuracy | precision | recall | F1 | false-alarm rate | n | tp | fp | tn | fn |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in by_layout.items():
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                name,
                _fmt(m["accuracy"]),
                _fmt(m["precision"]),
                _fmt(m["recall"]),
                _fmt(m["f1"]),
                _fmt(m["false_alarm_rate"]),
                m["n"],
                *(m["confusion"][k] for k in ("tp", "fp", "tn", "fn")),
            )
        )
    return lines


def model_card(manifest: dict[str, Any], metrics: dict[str, Any]) -> str:
    t = manifest["training"]
    lines = [
        f"# Model card: {manifest['model_version']}",
        "",
        "CNN-LSTM intrusion scorer (per-flow Conv1D encoder `flow_encoder` over each flow of a "
        f"per-source-host window of T={manifest['window']} flows, then an LSTM; sigmoid = attack probability).",  # noqa: E501
        "",
        "## Data",
        f"- files: {', '.join(Path(p).name for p in t['data'])}",
        f"- flows read: {t['rows_read']}; exact duplicate rows dropped: {t['exact_duplicates_dropped']}; "  # noqa: E501
        f"rows repeating another row's features+protocol+label: {t['feature_duplicates']}",
        f"- labels: {json.dumps(t['labels'])}",
        "",
        "## Split and training",
        f"- split: {t['split']} 70/15/15, seed {t['seed']}; sizes {json.dumps(t['split_sizes'])}",
        f"- hyper-parameters: {json.dumps(t['hyper'])}; epochs run {t['epochs_run']} (early stopping on val_loss, best restored)",  # noqa: E501
        f"- class weights: {json.dumps(t['class_weight'])}; protocol masked to unknown on {t['protocol_mask_fraction']:.0%} of training windows",  # noqa: E501
        f"- transform: signed log1p = {t['log1p']}, min-max fitted on the training split, clipped at serve time",  # noqa: E501
        f"- threshold {manifest['threshold']:.6g} ("
        + (
            "chosen on the validation split: lowest false-alarm rate + miss rate"
            if t.get("tune_threshold")
            else "0.5: balanced class weights"
        )
        + ")",
        f"- keras {manifest['keras_version']} ({manifest['backend']} backend), training time {t['seconds']:.0f} s",  # noqa: E501
        "",
        "## Test-split metrics (attack = positive)",
        "| accuracy | precision | recall | F1 | false-alarm rate | ROC AUC | n | tp | fp | tn | fn |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            _fmt(metrics["accuracy"]),
            _fmt(metrics["precision"]),
            _fmt(metrics["recall"]),
            _fmt(metrics["f1"]),
            _fmt(metrics["false_alarm_rate"]),
            "n/a" if metrics["roc_auc"] is None else f"{metrics['roc_auc']:.5f}",
            metrics["n"],
            *(metrics["confusion"][k] for k in ("tp", "fp", "tn", "fn")),
        ),
        *_by_layout_rows(metrics),
        "",
        "## Reproduce",
        "```",
        t["command"],
        "```",
        "",
        "## Limits",
        "- Trained on a label-stratified *sample* of the corrected CICIDS2017 (13% benign, not the real ~80%); "  # noqa: E501
        "false-alarm rates rest on a few thousand benign flows.",
        "- Random split leaks near-duplicate flows and host context between train and test; the time split is the honest number.",  # noqa: E501
        "",
    ]
    return "\n".join(lines)


# -- training ----------------------------------------------------------------------------------
def _fit_once(
    windows: np.ndarray,
    y: np.ndarray,
    idx: dict[str, np.ndarray],
    hyper: Hyper,
    config: TrainConfig,
    epochs: int,
    class_weight: dict[int, float] | None,
    checkpoint: Path | None,
    weights: np.ndarray | None = None,
) -> tuple[Any, dict[str, list[float]]]:
    import keras

    from model.cnn_lstm import make_model

    keras.utils.set_random_seed(config.seed)
    model = make_model(
        windows.shape[1:],
        filters=hyper.filters,
        kernel_size=hyper.kernel_size,
        lstm_units=hyper.lstm_units,
        dropout=hyper.dropout,
        learning_rate=hyper.learning_rate,
        dense_units=hyper.dense_units,
    )
    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True
        )
    ]
    if checkpoint is not None:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(checkpoint), monitor="val_loss", save_best_only=True
            )
        )
    train_weights = None if weights is None else weights[idx["train"]]
    validation = (
        (windows[idx["val"]], y[idx["val"]])
        if weights is None
        else (windows[idx["val"]], y[idx["val"]], weights[idx["val"]])
    )
    history = model.fit(
        windows[idx["train"]],
        y[idx["train"]],
        sample_weight=train_weights,
        validation_data=validation,
        epochs=epochs,
        batch_size=hyper.batch_size,
        class_weight=class_weight,
        callbacks=callbacks,
        verbose=config.verbose,
        shuffle=True,
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def grid_candidates(base: Hyper) -> list[Hyper]:
    out = []
    for lr in (1e-3, 3e-3):
        for batch in (128, 512):
            for filters in ((16, 32), (32, 64)):
                out.append(
                    Hyper(
                        lr,
                        batch,
                        filters,
                        base.kernel_size,
                        base.lstm_units,
                        base.dropout,
                        base.dense_units,
                    )
                )
    return out


def load_with_layout(paths: Sequence[str]) -> pd.DataFrame:
    """:func:`load_flows` of every file, with a ``layout`` column (the file's layout)."""
    return load_flows(paths, provenance=True).drop(columns=["file"])


def load_sources(paths: Sequence[str], benign: Sequence[str] = ()) -> pd.DataFrame:
    """Flows of ``paths`` and of the all-benign files ``benign``, with ``layout`` and ``source``
    (the file's folder name) columns; ``benign`` flows are labelled BENIGN."""
    frames = []
    for files, all_benign in ((paths, False), (benign, True)):
        if not files:
            continue
        part = load_flows(files, provenance=True)
        part["from_benign_files"] = all_benign
        if all_benign:
            part["label"] = "BENIGN"
            part["is_attack"] = np.int8(0)
        part["source"] = [Path(name).parent.name for name in part.pop("file")]
        frames.append(part)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def source_weights(frame: pd.DataFrame) -> np.ndarray:
    """Per row: every source weighs the same, and within a source each class present the same;
    mean 1 over the rows."""
    weights = np.zeros(len(frame), dtype=np.float32)
    sources = frame["source"].to_numpy()
    labels = frame["is_attack"].to_numpy()
    for source in np.unique(sources):
        in_source = sources == source
        present = [c for c in (0, 1) if np.any(in_source & (labels == c))]
        for label in present:
            rows = in_source & (labels == label)
            weights[rows] = 1.0 / (len(present) * rows.sum())
    return weights * (len(frame) / weights.sum())


def augment_extractors(
    frame: pd.DataFrame, idx: dict[str, np.ndarray], extractors: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """``frame`` plus, per extractor, every Java CICFlowMeter row as that extractor writes it
    (layout and source renamed, so windows never mix extractors); copies join their originals'
    train and validation splits, the test split keeps the originals only. Rows the Python
    package wrote (e.g. ``--benign`` captures) are not copied: the augmentations start from
    Java CICFlowMeter's definitions."""
    from model.extractors import AUGMENTATIONS

    unknown = [name for name in extractors if name not in AUGMENTATIONS]
    if unknown:
        raise SchemaError(f"unknown extractor augmentation {unknown} ({', '.join(AUGMENTATIONS)})")
    java = (frame["layout"] != PYTHON_CICFLOWMETER).to_numpy()
    originals = frame.loc[java]
    # Position of each original row within the copies (-1: not copied).
    copy_position = np.full(len(frame), -1)
    copy_position[java] = np.arange(int(java.sum()))
    parts, offset = [frame], len(frame)
    out = {name: [rows] for name, rows in idx.items()}
    for extractor in extractors:
        copy = AUGMENTATIONS[extractor](originals)
        copy["layout"] = extractor
        if "source" in copy:
            copy["source"] = copy["source"].astype(str) + "@" + extractor
        parts.append(copy)
        for name in ("train", "val"):
            copied = copy_position[idx[name]]
            out[name].append(copied[copied >= 0] + offset)
        offset += len(copy)
    return (
        pd.concat(parts, ignore_index=True),
        {name: np.concatenate(rows) for name, rows in out.items()},
    )


def jitter_timescale(
    frame: pd.DataFrame, first_copy: int, spread: float, seed: int
) -> pd.DataFrame:
    """``frame`` with rows from ``first_copy`` on (the augmented copies) rescaled in time, one
    factor per window host (:func:`window_hosts`); the originals, and so the test split, keep
    their times."""
    from model.extractors import rescale_time, timescale_factors

    copies = frame.iloc[first_copy:]
    keys = window_hosts(frame).iloc[first_copy:].where(copies["src_ip"].notna())
    factors = timescale_factors(keys.reset_index(drop=True), spread, seed)
    rescaled = rescale_time(copies, factors)
    return pd.concat([frame.iloc[:first_copy], rescaled], ignore_index=True)


def window_hosts(frame: pd.DataFrame) -> pd.Series:
    """Window grouping key: the source host, per source (or layout) when the data mixes them (a
    stream carries one extractor's flows, so a window never mixes two extractors)."""
    for group in ("source", "layout"):
        if group in frame and frame[group].nunique() > 1:
            return frame[group].astype(str) + "|" + frame["src_ip"].astype(str)
    return frame["src_ip"]


def check_timescale(config: TrainConfig) -> None:
    """``--augment-timescale F``: a finite F >= 1, and copies to jitter."""
    spread = config.augment_timescale
    if not (math.isfinite(spread) and spread >= 1.0):
        raise ConfigurationError(f"--augment-timescale {spread}: a factor of at least 1")
    if spread != 1.0 and not config.augment_extractors:
        raise ConfigurationError(
            "--augment-timescale jitters the augmented copies: add --augment-extractor"
        )


def prepare(config: TrainConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Load, de-duplicate, split, fit the transform, build windows."""
    check_timescale(config)  # before minutes of loading
    if config.benign or config.balance_sources:
        frame = load_sources(config.data, config.benign)
    else:
        frame = load_with_layout(config.data)
    rows_read = len(frame)
    frame = frame.loc[frame["is_attack"] >= 0].reset_index(drop=True)
    unlabeled = rows_read - len(frame)
    frame, dropped = drop_exact_duplicates(frame)
    feature_dups = count_feature_duplicates(frame)
    log(
        f"{rows_read} flows read, {unlabeled} unlabeled skipped, {dropped} exact duplicates dropped, "  # noqa: E501
        f"{feature_dups} rows repeat another row's features"
    )
    idx = split_indices(frame, config.split, config.seed)
    if config.augment_extractors:
        originals = len(frame)
        frame, idx = augment_extractors(frame, idx, config.augment_extractors)
        log(f"extractor augmentation ({', '.join(config.augment_extractors)}): {len(frame)} rows")
        if config.augment_timescale != 1.0:
            frame = jitter_timescale(frame, originals, config.augment_timescale, config.seed)
            log(f"time-scale jitter of the copies: x1/{config.augment_timescale:g} .. "
                f"x{config.augment_timescale:g} per host")
    from model.features import FEATURE_SETS

    if config.features not in FEATURE_SETS:
        raise SchemaError(f"unknown feature set {config.features!r} ({', '.join(FEATURE_SETS)})")
    transform = FlowTransform(FEATURE_SETS[config.features], log1p=config.log1p).fit(
        frame.iloc[idx["train"]]
    )
    transformed = transform.transform_many(frame)
    windows, _ = make_windows(transformed, window_hosts(frame), frame["timestamp"], config.window)
    y = frame["is_attack"].to_numpy(dtype=np.float32)
    rng = np.random.default_rng(config.seed)
    n_mask = round(config.protocol_mask_fraction * len(idx["train"]))
    masked_rows = (
        rng.choice(idx["train"], size=n_mask, replace=False) if n_mask else np.array([], int)
    )
    mask_protocol(windows, masked_rows, transform.n_features)
    return {
        "frame": frame,
        "rows_read": rows_read,
        "dropped": dropped,
        "feature_dups": feature_dups,
        "idx": idx,
        "transform": transform,
        "windows": windows,
        "y": y,
        "weights": row_weights(frame, config),
    }


def row_weights(frame: pd.DataFrame, config: TrainConfig) -> np.ndarray | None:
    """Per-row sample weights: balanced sources and/or heavier ``--benign`` flows (None: every
    row weighs 1)."""
    weights = source_weights(frame) if config.balance_sources else None
    if config.benign_weight != 1.0 and "from_benign_files" in frame:
        if weights is None:
            weights = np.ones(len(frame), dtype=np.float32)
        weights[frame["from_benign_files"].to_numpy(dtype=bool)] *= config.benign_weight
    return weights


def train(config: TrainConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one training; returns the test metrics. Writes the artifacts under ``config.out``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    started = time.time()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    data = prepare(config, log)
    idx, windows, y, frame = data["idx"], data["windows"], data["y"], data["frame"]
    log(f"split {config.split}: " + ", ".join(f"{k} {len(v)}" for k, v in idx.items()))
    class_weight = None
    if config.class_weight and not config.balance_sources:
        positives = float(y[idx["train"]].mean())
        if 0 < positives < 1:
            class_weight = {0: 0.5 / (1 - positives), 1: 0.5 / positives}
    hyper = config.hyper
    grid_results = []
    if config.grid:
        for candidate in grid_candidates(hyper):
            model, history = _fit_once(
                windows, y, idx, candidate, config, min(config.epochs, 6), class_weight, None
            )
            best = min(history["val_loss"])
            grid_results.append({**asdict(candidate), "val_loss": best})
            log(f"grid {asdict(candidate)} -> best val_loss {best:.5f}")
        best_row: dict[str, Any] = min(grid_results, key=lambda r: r["val_loss"])
        chosen: dict[str, Any] = {
            k: (tuple(v) if k == "filters" else v) for k, v in best_row.items() if k != "val_loss"
        }
        hyper = Hyper(**chosen)
        log(f"grid choice: {asdict(hyper)}")
    weights, fit_class_weight = data["weights"], class_weight
    if weights is not None and class_weight is not None:
        # Keras refuses class_weight together with sample_weight: fold the class weights in.
        weights = weights * np.where(y == 1, class_weight[1], class_weight[0]).astype(np.float32)
        fit_class_weight = None
    with tempfile.TemporaryDirectory() as scratch:
        model, history = _fit_once(
            windows,
            y,
            idx,
            hyper,
            config,
            config.epochs,
            fit_class_weight,
            Path(scratch) / "best.keras",
            weights,
        )
    val_scores = model.predict(windows[idx["val"]], batch_size=2048, verbose=0).ravel()
    # Balanced class weights make 0.5 the balanced decision point. Tuning on the validation split
    # (a few hundred benign flows) proved noisy: one benign flow moved the threshold to 0.997 and
    # cost 120 missed attacks on the time split (docs/results.md), so it is opt-in.
    threshold = choose_threshold(y[idx["val"]], val_scores) if config.tune_threshold else 0.5
    test_scores = model.predict(windows[idx["test"]], batch_size=2048, verbose=0).ravel()
    metrics = binary_metrics(y[idx["test"]], test_scores, threshold)
    metrics["split"] = "test"
    layouts = frame["layout"].to_numpy()[idx["test"]]
    if len(np.unique(layouts)) > 1:
        metrics["by_layout"] = {
            str(name): binary_metrics(
                y[idx["test"]][layouts == name], test_scores[layouts == name], threshold
            )
            for name in np.unique(layouts)
        }
    model_path = out / artifacts.MODEL_FILE
    model.save(model_path)
    transform_sha = data["transform"].to_json(out / artifacts.TRANSFORM_FILE)
    model_sha = artifacts.sha256_file(model_path)
    labels = frame["label"].value_counts().to_dict()
    training = {
        "data": [str(p) for p in config.data],
        "benign": [str(p) for p in config.benign],
        "features": config.features,
        "balance_sources": config.balance_sources,
        "augment_extractors": list(config.augment_extractors),
        "augment_timescale": config.augment_timescale,
        "benign_weight": config.benign_weight,
        "sources": (
            {str(k): int(v) for k, v in frame["source"].value_counts().items()}
            if "source" in frame
            else None
        ),
        "rows_read": data["rows_read"],
        "exact_duplicates_dropped": data["dropped"],
        "feature_duplicates": data["feature_dups"],
        "rows_used": len(frame),
        "labels": {str(k): int(v) for k, v in labels.items()},
        "attack_fraction": float(y.mean()),
        "split": config.split,
        "seed": config.seed,
        "split_sizes": {k: len(v) for k, v in idx.items()},
        "hyper": asdict(hyper),
        "grid": grid_results,
        "epochs_run": len(history.get("loss", [])),
        "class_weight": {str(k): v for k, v in (class_weight or {}).items()},
        "protocol_mask_fraction": config.protocol_mask_fraction,
        "log1p": config.log1p,
        "tune_threshold": config.tune_threshold,
        "validation_metrics": binary_metrics(y[idx["val"]], val_scores, threshold),
        "history": history,
        "seconds": time.time() - started,
        "command": config.command,
    }
    manifest = {
        "format": "stream-ids-model",
        "model_version": f"cnn-lstm-T{config.window}-{config.split}-{model_sha[:12]}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "window": config.window,
        "threshold": threshold,
        "feature_names": list(data["transform"].feature_names),
        "transform_outputs": list(data["transform"].output_names),
        "sha256": {artifacts.MODEL_FILE: model_sha, artifacts.TRANSFORM_FILE: transform_sha},
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "training": training,
    }
    artifacts.write_manifest(out, manifest)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plots = _plots(out, history, y[idx["test"]], test_scores, threshold)
    manifest["plots"] = [f"plots/{p}" for p in plots]
    artifacts.write_manifest(out, manifest)
    (out / "MODEL_CARD.md").write_text(model_card(manifest, metrics))
    log(f"wrote {out} in {time.time() - started:.0f} s")
    return metrics


def command_line(argv: Sequence[str] | None = None) -> str:
    return "stream-ids train " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
