"""The generalization report's metric, PSI and writer functions on synthetic data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.generalization import (
    OTHER_DATASETS_POOLED,
    PerFlowScorer,
    attack_family,
    calibrate_on_halves,
    dead_letter_reason,
    dead_letter_summary,
    drift_table,
    issue_targets,
    outside_training,
    psi,
    recall_at_false_alarm,
    render_markdown,
    score_by_file,
    skip_reason,
    source_metrics,
    split_halves,
    worker_scores_of,
    yardstick,
)
from stream_ids import schema
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
    metrics["false_alarm_kinds"] = {
        "benign": 2,
        "false_alarms": 1,
        "kinds": [
            {
                "direction": "inbound from a public address",
                "service": "TCP/445",
                "benign": 2,
                "false_alarms": 1,
                "false_alarm_rate": 0.5,
            }
        ],
        "other_false_alarms": 0,
    }
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
    assert "## Where the false alarms are" in text
    assert "| s1 | inbound from a public address | TCP/445 | 1 of 1 | 2 | 50.0% |" in text


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


def test_split_halves_alternates_files_sorted_by_name_or_rows():
    files = ["b.pcap", "a.pcap", "c.pcap", "b.pcap", "d.pcap", "a.pcap"]
    # Sorted: a (A), b (B), c (A), d (B).
    assert split_halves(files, by_file=True).tolist() == [False, True, True, False, False, True]
    assert split_halves(files, by_file=False).tolist() == [True, False, True, False, True, False]
    assert split_halves([], by_file=True).tolist() == []


def test_dead_letter_summary_counts_reasons_most_frequent_first():
    valid = np.array([True, False, False, True, False])
    reasons = [
        None,
        "out_of_range on idle_mean",
        "non_finite on flow_iat_min",
        None,
        "out_of_range on idle_mean",
    ]
    summary = dead_letter_summary(valid, reasons)
    assert summary["flows"] == 5 and summary["dead_letters"] == 3
    assert summary["share"] == pytest.approx(0.6)
    assert list(summary["reasons"].items()) == [
        ("out_of_range on idle_mean", 2),
        ("non_finite on flow_iat_min", 1),
    ]
    assert dead_letter_summary(np.ones(2, dtype=bool), [None, None])["share"] == 0.0


def _canonical(rows: int, files: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        np.zeros((rows, len(schema.FEATURE_NAMES))), columns=list(schema.FEATURE_NAMES)
    )
    frame["source_file"] = files
    frame["is_attack"] = np.zeros(rows, dtype=np.int8)
    frame["label"] = "BENIGN"
    frame["src_ip"] = "10.0.0.1"
    frame["timestamp"] = np.arange(rows, dtype=np.float64)
    return frame


def test_worker_scores_dead_letter_a_huge_idle_time_with_its_feature():
    # CIC-Darknet2020 writes absolute times (~1.4e15) in idle_*: above the worker's 1e15 rule.
    frame = _canonical(4, ["x.csv", "x.csv", "y.csv", "y.csv"])
    frame.loc[1, "idle_mean"] = 1.44e15
    frame["flow_duration"] = [1.0, 2.0, 3.0, 4.0]
    scorer = PerFlowScorer(lambda part: part["flow_duration"].to_numpy() / 10, threshold=0.5)
    scored = worker_scores_of(scorer, frame)
    assert scored.valid.tolist() == [True, False, True, True]
    assert np.isnan(scored.score[1])
    assert scored.score[[0, 2, 3]] == pytest.approx([0.1, 0.3, 0.4])
    assert scored.reason == [None, "out_of_range on idle_mean", None, None]
    assert dead_letter_reason(frame.loc[1, list(schema.FEATURE_NAMES)].to_numpy()) == (
        "out_of_range on idle_mean"
    )


def _halves() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Half A's benign flows score k/128, half B's k/128 + 1/256 (k = 0..99, exact in float32)
    # and one more flow of B is dead-lettered (NaN); four attacks.
    steps = np.arange(100) / 128
    scores = np.r_[steps, steps + 1 / 256, np.nan, [0.9, 0.95, 0.99, 0.5]]
    truth = np.r_[np.zeros(201), np.ones(4)].astype(np.int8)
    half_a = np.r_[np.ones(100, bool), np.zeros(101, bool), [True, False, True, False]]
    return scores, truth, half_a


def test_calibrate_on_halves_fits_one_half_and_measures_the_other():
    scores, truth, half_a = _halves()
    result = calibrate_on_halves(scores, truth, half_a, np.array([]), own_threshold=0.5)
    a_to_b = result["A->B"]
    # 0.1% of 100 flows: no flow may alert, the threshold sits just above A's top, 99/128.
    assert a_to_b["threshold"] == pytest.approx(99 / 128) and a_to_b["threshold"] > 99 / 128
    assert not a_to_b["capped"] and a_to_b["ceiling"] is None
    assert a_to_b["assured_alert_rate"] == pytest.approx(1 / 101)  # all 100 vouch for is ~1%
    # B (100 scorable): only 99/128 + 1/256 reaches it. At 0.5: k = 64..99.
    assert (a_to_b["test_benign"], a_to_b["test_scored"]) == (101, 100)
    assert (a_to_b["false_alarms"], a_to_b["false_alarm_rate"]) == (1, 0.01)
    assert (a_to_b["false_alarms_before"], a_to_b["false_alarm_rate_before"]) == (36, 0.36)
    # Every attack flow counts, whichever half it is in: 0.9, 0.95, 0.99 reach 0.773.
    assert (a_to_b["detected"], a_to_b["attacks"], a_to_b["recall"]) == (3, 4, 0.75)
    assert a_to_b["recall_before"] == 1.0  # the attack at 0.5 alerts at the model's own 0.5
    b_to_a = result["B->A"]
    assert (b_to_a["fit_benign"], b_to_a["fit_scored"]) == (101, 100)
    assert b_to_a["false_alarms"] == 0 and b_to_a["test_scored"] == 100
    assert b_to_a["threshold"] > 99 / 128 + 1 / 256


def test_calibrate_on_halves_is_capped_by_the_attack_floor_or_refuses_too_few_flows():
    scores, truth, half_a = _halves()
    # 95% of the reference attacks reach 0.6: the threshold may not rise above it.
    capped = calibrate_on_halves(scores, truth, half_a, np.full(20, 0.6), 0.5)["A->B"]
    assert capped["capped"] and capped["threshold"] == pytest.approx(0.6)
    assert capped["clean_quantile_threshold"] == pytest.approx(99 / 128)
    assert capped["false_alarms"] == 23  # k/128 + 1/256 >= 0.6: k = 77..99
    few = calibrate_on_halves(scores[95:], truth[95:], half_a[95:], np.array([]), 0.5)
    assert few["A->B"]["fit_scored"] == 5 and "at least 100" in few["A->B"]["error"]
    assert "false_alarms" not in few["A->B"] and few["A->B"]["false_alarms_before"] == 36


def _report_for_targets() -> dict:
    def calibrated(rate_a: float, rate_b: float, capped: bool) -> dict:
        return {
            direction: {
                "false_alarms": round(rate * 100),
                "fit_benign": 100,
                "fit_scored": 100,
                "test_benign": 100,
                "test_scored": 100,
                "false_alarms_before": 10,
                "attacks": 0,
                "recall_before": None,
                "false_alarm_rate": rate,
                "threshold": 0.9993,
                "capped": capped,
                "ceiling": 0.9993,
            }
            for direction, rate in (("A->B", rate_a), ("B->A", rate_b))
        } | {"split": "by row"}

    return {
        "models": [{"name": "m1"}],
        "sources": {"a": {"group": "other-datasets"}, "pcap/benign": {"group": "pcap"}},
        "yardstick": {
            "m1": {
                "test_split_accuracy": 0.9995,
                "test_split_false_alarm_rate": 0.0015,
                "false_alarm_rate_pcap_benign": 0.2,
                "false_alarms_pcap_benign": [20, 100],
                "false_alarm_rate_other_datasets": 0.005,
                "false_alarms_other_datasets": [1, 200],
                "recall_at_far": {"cse-cic-ids2018-improved": 0.5},
            }
        },
        "dead_letters": {
            "a": {
                "by_model": {
                    "m1": {"false_alarms": 1, "benign_scored": 150, "benign_dead_letters": 50}
                }
            },
        },
        "calibration": {
            "m1": {
                "rows": {
                    "pcap/benign": calibrated(0.05, 0.0, True),
                    OTHER_DATASETS_POOLED: calibrated(0.0, 0.001, False),
                }
            }
        },
    }


def test_issue_targets_say_which_bounds_the_first_model_meets():
    targets = issue_targets(_report_for_targets())
    met = {row["target"]: row["met"] for row in targets}
    assert met == {
        "false alarms on pcap/benign, no calibration": False,
        "false alarms on other-datasets benign rows (pooled), no calibration": True,
        "false alarms on pcap/benign, calibrated on the other half": False,  # A->B 5%
        "false alarms on other-datasets benign rows (pooled), calibrated on the other half": True,
        "recall at <= 1% false alarms on cse-cic-ids2018-improved": False,
        "test-split accuracy (CICIDS2017)": True,
        "test-split false alarms (CICIDS2017)": False,  # 0.15%
    }
    pooled = targets[1]["measured"]
    assert "0.50% (1/200) of all rows" in pooled
    assert "0.67% (1/150) of the flows the worker scores (50 dead-lettered)" in pooled
    report = _report_for_targets()
    del report["calibration"]["m1"]["rows"]["pcap/benign"]
    report["calibration"]["m1"]["rows"][OTHER_DATASETS_POOLED]["A->B"]["error"] = "too few"
    rows = {row["target"]: row for row in issue_targets(report)}
    assert rows["false alarms on pcap/benign, calibrated on the other half"]["met"] is None
    calibrated = rows[
        "false alarms on other-datasets benign rows (pooled), calibrated on the other half"
    ]
    assert calibrated["met"] is False and "A->B not calibratable" in calibrated["measured"]


def test_render_markdown_puts_the_targets_first_and_says_the_worker_refuses_rows():
    report = _report_for_targets()
    report.update(
        command="python -m model.generalization --model model/shipped",
        date="2030-01-02 03:04 UTC",
        results={},
        skipped={},
    )
    report["models"] = [{"name": "m1", "kind": "cnn-lstm", "detail": "d", "test_split": None}]
    report["sources"] = {}
    report["targets"] = issue_targets(report)
    report["dead_letters"] = {
        "cic-darknet2020": {
            **dead_letter_summary(
                np.r_[np.zeros(195, bool), np.ones(4, bool)],
                ["out_of_range on idle_mean"] * 195 + [None] * 4,
            ),
            "by_model": {"m1": {"false_alarms": 0, "benign_scored": 4, "benign_dead_letters": 195}},
        }
    }
    text = render_markdown(report)
    assert text.index("## Targets of issue #16") < text.index("## Models")
    row = "| false alarms on pcap/benign, no calibration | <= 1% | 20.00% (20/100) | not met |"
    assert row in text
    assert "*Capped*: the 0.1% quantile" in text
    assert "`Scorer.score_frame` on **all** rows" in text
    assert (
        "| cic-darknet2020 | 199 | 97.99% (195/199) | out_of_range on idle_mean (195) | "
        "0.00% (0/4) |"
    ) in text


def test_cicids2017_rows_of_a_mixed_training_split() -> None:
    from model.generalization import cicids2017_rows

    frame = pd.DataFrame({"source": ["cicids2017-improved", "cic-ddos2019", "cicids2017-original"]})
    np.testing.assert_array_equal(cicids2017_rows(frame, []), [True, False, True])
    bare = pd.DataFrame({"layout": ["a", "b"]})
    only_2017 = [Path("d/cicids2017-improved/x.csv"), Path("d/cicids2017-original/y.csv")]
    np.testing.assert_array_equal(cicids2017_rows(bare, only_2017), [True, True])
    assert cicids2017_rows(bare, [*only_2017, Path("d/cic-ddos2019/z.csv")]) is None


def test_training_files_missing_here_still_count_as_training(tmp_path: Path) -> None:
    from model.generalization import outside_training, training_files

    present = tmp_path / "cicids2017-improved"
    present.mkdir()
    (present / "a.csv").write_text("x\n")
    manifest = {"training": {"data": [str(present)],
                             "benign": ["runs/captures/benign-A/webex.pcap.csv"]}}
    files = training_files(manifest, root=tmp_path)
    assert files == [(present / "a.csv").resolve(),
                     (tmp_path / "runs/captures/benign-A/webex.pcap.csv").resolve()]
    frame = pd.DataFrame({"source_file": ["pcap/benign/webex.pcap", "pcap/benign/ssh.pcap"]})
    kept = outside_training(frame, tmp_path, files)
    assert kept["source_file"].tolist() == ["pcap/benign/ssh.pcap"]


def test_the_report_says_when_captures_must_be_extracted_first() -> None:
    from model.generalization import _captures_first_lines

    trained_on_captures = {"models": [{"train_files": ["runs/captures/benign-A/ssh.pcap.csv"]}]}
    assert "python -m model.captures" in "".join(_captures_first_lines(trained_on_captures))
    assert _captures_first_lines({"models": [{"train_files": ["cicids2017-improved/a.csv"]}]}) == []


def test_no_false_alarm_section_when_the_first_model_raised_none() -> None:
    from model.generalization import _false_alarm_lines

    quiet = {"benign": 5, "false_alarms": 0, "kinds": [], "other_false_alarms": 0}
    report = {
        "models": [{"name": "m1"}],
        "results": {
            "s1": {"m1": {"false_alarm_kinds": quiet}},
            "s2": {"m1": {"in_training": True}},
        },
    }
    assert _false_alarm_lines(report, "_stamp_") == []
