"""The one metrics function: training, evaluate, baselines and the streaming stats all use it.

Attack is the positive class. Metrics that need both classes (or a non-zero denominator) are
``None`` rather than a crash or a misleading number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METRIC_KEYS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "false_alarm_rate",
    "roc_auc",
    "average_precision",
    "confusion",
    "n",
)


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def confusion_counts(y_true: Any, y_pred: Any) -> dict[str, int]:
    truth = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_pred).astype(bool)
    return {
        "tp": int(np.sum(truth & pred)),
        "fp": int(np.sum(~truth & pred)),
        "tn": int(np.sum(~truth & ~pred)),
        "fn": int(np.sum(truth & ~pred)),
    }


def metrics_from_confusion(tp: int, fp: int, tn: int, fn: int) -> dict[str, float | None]:
    """accuracy, precision, recall, f1, false_alarm_rate from counts (None where undefined)."""
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "precision": precision,
        "recall": recall,
        "f1": f1 if (tp + fn) else None,
        "false_alarm_rate": _ratio(fp, fp + tn),
    }


def binary_metrics(y_true: Any, scores: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of attack scores against labels (1 = attack); ``scores >= threshold`` is an alert.

    Keys: accuracy, precision, recall, f1, false_alarm_rate, roc_auc, average_precision,
    confusion {tp, fp, tn, fn}, n, threshold.
    """
    truth = np.asarray(y_true).astype(np.int8).ravel()
    score = np.asarray(scores, dtype=np.float64).ravel()
    if truth.shape != score.shape:
        raise ValueError(f"{truth.shape[0]} labels but {score.shape[0]} scores")
    confusion = confusion_counts(truth, score >= threshold)
    result: dict[str, Any] = metrics_from_confusion(**confusion)
    both = 0 < truth.sum() < len(truth)
    roc_auc = average_precision = None
    if both:
        from sklearn.metrics import average_precision_score, roc_auc_score

        roc_auc = float(roc_auc_score(truth, score))
        average_precision = float(average_precision_score(truth, score))
    result.update(
        roc_auc=roc_auc,
        average_precision=average_precision,
        confusion=confusion,
        n=len(truth),
        threshold=float(threshold),
    )
    return result
