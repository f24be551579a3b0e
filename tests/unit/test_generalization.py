"""The generalization report's metric, PSI and writer functions on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from model.generalization import (
    attack_family,
    drift_table,
    outside_training,
    psi,
    recall_at_false_alarm,
    render_markdown,
    score_by_file,
    skip_reason,
    source_metrics,
    yardstick,
)
from stream_ids.errors import SchemaError


def _frame(is_attack: list[int], labels: list[str] | None = None) -> pd.DataFrame:
    labels = labels or ["BENIGN" if value == 0 else "DoS Hulk" for value in is_attack]
    return pd.DataFrame({"is_attack": np.array(is_attack, dtype=np.int8), "label": labels})


def test_recall_at_false_alarm_reads_the_roc_curve():
    # 100 benign flows scored 0.00 .. 0.99; attacks at 0.995 (above all), 0.985 and 0.5.
    benign = np.arange(100) / 100
    attacks = np.array([0.995, 0.985, 0.5])
    y = np.r_[np.zeros(100), np.ones(3)]
    scores = np.r_[benign, attacks]
    # 1% of 100 benign flows = 1 false alarm: threshold 0.985 admits the benign 0.99 only.
    recall, threshold = recall_at_false_alarm(y, scores, 0.01)
    assert recall == pytest.approx(2 / 3)
    assert threshold == pytest.approx(0.985)
    # No false alarm allowed: only the attack above every benign flow.
    assert recall_at_false_alarm(y, scores, 0.0) == (pytest.approx(1 / 3), pytest.approx(0.995))
    # 51% false alarms admit the attack at 0.5.
    assert recall_at_false_alarm(y, scores, 0.51)[0] == pytest.approx(1.0)
    assert recall_at_false_alarm(np.ones(3), attacks) == (None, None)


def test_source_metrics_counts_each_class_at_the_threshold():
    frame = _frame(
        [0, 0, 0, 0, 1, 1, 1, -1, -1],
        ["BENIGN"] * 4 + ["DoS attacks-Hulk", "DoS Hulk", "Bot", None, None],
    )
    scores = np.array([0.1, 0.2, 0.7, 0.3, 0.9, 0.4, 0.8, 0.6, 0.1])
    metrics = source_metrics(scores, frame, threshold=0.5, max_false_alarm=0.25)
    assert (metrics["benign"], metrics["attacks"], metrics["unlabelled"]) == (4, 3, 2)
    assert metrics["false_alarms"] == 1 and metrics["false_alarm_rate"] == 0.25
    assert metrics["detected"] == 2 and metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["alert_rate_unlabelled"] == 0.5
    assert metrics["alert_rate"] == pytest.approx(4 / 9)
    assert metrics["families"]["DoS Hulk"] == {
        "flows": 2,
        "detected": 1,
        "recall": 0.5,
        "recall_at_far": 1.0,
    }
    assert metrics["families"]["Botnet"]["recall"] == 1.0
    # 25% FAR = one benign flow (0.7) may alert: the threshold drops to 0.4, every attack.
    assert metrics["recall_at_far"] == 1.0 and metrics["threshold_at_far"] == pytest.approx(0.4)
    assert metrics["roc_auc"] == pytest.approx(11 / 12)  # 11 of 12 attack-benign pairs ordered


def test_source_metrics_says_none_where_a_class_is_missing():
    metrics = source_metrics(np.array([0.9, 0.1]), _frame([0, 0]), 0.5)
    assert metrics["false_alarm_rate"] == 0.5
    assert metrics["recall"] is None and metrics["recall_at_far"] is None
    assert metrics["roc_auc"] is None and metrics["alert_rate_unlabelled"] is None
    with pytest.raises(ValueError, match="scores for"):
        source_metrics(np.array([0.9]), _frame([0, 0]), 0.5)


def test_psi_is_zero_for_the_same_distribution_and_known_for_a_shift():
    reference = np.arange(1000, dtype=np.float64)  # ten equal quantile bins of 100
    assert psi(reference, reference) == pytest.approx(0.0)
    # Every sample value in the lowest bin: q = (1, eps x 9), p = 0.1 each.
    eps = 1e-4
    expected = (1 - 0.1) * math.log(1 / 0.1) + 9 * (eps - 0.1) * math.log(eps / 0.1)
    assert psi(reference, np.zeros(50)) == pytest.approx(expected)
    assert psi(reference, []) is None


def test_psi_handles_point_masses_infinity_and_nan():
    reference = np.r_[np.zeros(700), np.arange(1, 301, dtype=np.float64)]
    assert psi(reference, reference) == pytest.approx(0.0)
    # +Infinity falls in the top bin, like the largest values; NaN has a bin of its own.
    top = np.full(10, 300.0)
    assert psi(reference, np.full(10, np.inf)) == pytest.approx(psi(reference, top))
    assert psi(reference, np.full(10, np.nan)) > psi(reference, top) > 1.0
    # A feature constant in the reference: any other value is a shift.
    constant = np.zeros(500)
    assert psi(constant, constant) == pytest.approx(0.0)
    eps = 1e-4
    assert psi(constant, np.ones(20)) == pytest.approx(2 * (1 - eps) * math.log(1 / eps))


def test_drift_table_has_one_row_per_feature_and_one_column_per_source():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    shifted = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(3, 1, size=2000)})
    table = drift_table(reference, {"same": reference, "shifted": shifted}, features=["a", "b"])
    assert list(table.index) == ["a", "b"] and list(table.columns) == ["same", "shifted"]
    assert table.loc["a", "shifted"] < 0.1 < 1.0 < table.loc["b", "shifted"]


def test_attack_family_maps_dataset_labels_to_one_name():
    assert attack_family("DoS attacks-Hulk") == attack_family("DoS Hulk") == "DoS Hulk"
    assert attack_family("DDoS attacks-LOIC-HTTP") == "DDoS LOIC-HTTP"
    assert attack_family("DDoS-LOIC-UDP") == "DDoS LOIC-UDP"
    assert attack_family("Infiltration - NMAP Portscan") == "Infiltration - Portscan"
    assert attack_family("Infilteration") == "Infiltration"
    assert attack_family("Botnet Ares") == attack_family("Bot") == "Botnet"
    assert attack_family("Something New") == "Something New"


def test_scores_are_computed_per_file_and_training_files_are_left_out(tmp_path):
    frame = pd.DataFrame({"source_file": ["a.csv", "b.csv", "a.csv"], "value": [1.0, 2.0, 3.0]})
    seen = []

    def score(part: pd.DataFrame) -> np.ndarray:
        seen.append(list(part["source_file"]))
        return part["value"].to_numpy() * 10

    assert list(score_by_file(score, frame)) == [10.0, 20.0, 30.0]
    assert sorted(seen) == [["a.csv", "a.csv"], ["b.csv"]]
    kept = outside_training(frame, tmp_path, [tmp_path / "a.csv"])
    assert list(kept["source_file"]) == ["b.csv"]


def test_render_markdown_writes_the_table_with_the_command_and_date():
    frame = _frame([0, 0, 1, 1])
    metrics = source_metrics(np.array([0.1, 0.6, 0.9, 0.2]), frame, 0.5)
    metrics["by_file"] = {}
    report = {
        "command": "python -m model.generalization --model model/shipped",
        "date": "2030-01-02 03:04 UTC",
        "git_commit": "abc1234",
        "seconds": 12.0,
        "models": [{"name": "m1", "kind": "cnn-lstm", "detail": "d", "test_split": None}],
        "sources": {
            "s1": {
                "description": "a source",
                "flows": 4,
                "benign": 2,
                "attacks": 2,
                "unlabelled": 0,
            }
        },
        "skipped": {"x/ten-columns.csv": "not scorable: lacks 73 features"},
        "results": {"s1": {"m1": metrics}, "s2": {"m1": {"in_training": True}}},
    }
    text = render_markdown(report)
    assert "python -m model.generalization --model model/shipped" in text
    assert "2030-01-02 03:04 UTC" in text
    assert "| s1 | m1 | 4 | 50.00% (1/2) | 50.00% (1/2) |" in text
    assert "| s2 | m1 | in training |" in text
    assert "x/ten-columns.csv" in text and "DoS Hulk" in text


def test_yardstick_pools_the_benign_rows_of_other_datasets():
    def metrics(false_alarms: int, benign: int, recall_at_far: float | None) -> dict:
        return {
            "false_alarms": false_alarms,
            "benign": benign,
            "recall_at_far": recall_at_far,
            "false_alarm_rate": false_alarms / benign,
        }

    report = {
        "models": [{"name": "m1", "test_split": {"accuracy": 0.999}}],
        "sources": {
            "a": {"group": "other-datasets"},
            "b": {"group": "other-datasets"},
            "pcap/benign": {"group": "pcap"},
        },
        "results": {
            "a": {"m1": metrics(1, 100, 0.5)},
            "b": {"m1": metrics(3, 300, None)},
            "pcap/benign": {"m1": metrics(2, 10, None)},
        },
    }
    row = yardstick(report)["m1"]
    assert row["false_alarm_rate_other_datasets"] == pytest.approx(4 / 400)
    assert row["false_alarms_other_datasets"] == [4, 400]
    assert row["false_alarm_rate_pcap_benign"] == pytest.approx(0.2)
    assert row["recall_at_far"] == {"a": 0.5}
    assert row["test_split_accuracy"] == 0.999


def test_skip_reason_tells_too_few_features_from_an_unreadable_file(tmp_path):
    path = tmp_path / "ten.csv"
    lacking = SchemaError(f"{path}: layout 'x' lacks 73 of the 76 required feature columns: a")
    assert skip_reason(lacking, path).startswith("not scorable: layout 'x' lacks 73")
    assert skip_reason(SchemaError(f"{path}: empty file"), path) == "not loadable: empty file"
