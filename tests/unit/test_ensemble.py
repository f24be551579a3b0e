"""model.ensemble: members' scores averaged, agreement on benign flows counted."""

from __future__ import annotations

import numpy as np

from model.ensemble import agreement, combine, markdown, measure, metrics
from stream_ids.artifacts import shipped_model_dir
from stream_ids.datasets import shared_data_dir
from stream_ids.loader import load_flows
from stream_ids.scorer import Scorer


def test_metrics_and_agreement_count_at_one_half() -> None:
    truth = np.array([0, 0, 0, 1, 1])
    member_a = np.array([0.9, 0.1, 0.6, 0.7, 0.2])
    member_b = np.array([0.8, 0.2, 0.1, 0.9, 0.4])
    found = metrics(truth, (member_a + member_b) / 2)
    assert found["false_alarm_rate"] == 1 / 3  # mean 0.85, 0.15, 0.35
    assert found["recall"] == 1 / 2  # mean 0.8, 0.3
    counted = agreement(truth, [member_a, member_b])
    assert counted == {
        "benign_flows": 3,
        "benign_alerting_in_every_member": 1,
        "benign_alerting_in_any_member": 2,
    }


def test_the_mean_and_the_median_of_different_members() -> None:
    truth = np.array([0, 0, 0, 1, 1, 1])
    members = [
        np.array([0.9, 0.1, 0.1, 0.9, 0.1, 0.6]),
        np.array([0.1, 0.1, 0.1, 0.9, 0.1, 0.6]),
        np.array([0.2, 0.9, 0.1, 0.1, 0.9, 0.6]),
    ]
    rows = combine("s", truth, ["a", "b", "c"], members)
    assert [row["model"] for row in rows] == ["a", "b", "c", "mean of 3", "median of 3"]
    mean, median = rows[3], rows[4]
    # mean 0.4, 0.367, 0.1 | 0.633, 0.367, 0.6: no false alarm, two attacks of three
    assert mean["false_alarm_rate"] == 0 and mean["recall"] == 2 / 3
    # median 0.2, 0.1, 0.1 | 0.9, 0.1, 0.6: each member's lone false alarm outvoted
    assert median["false_alarm_rate"] == 0 and median["recall"] == 2 / 3
    assert [row["false_alarm_rate"] for row in rows[:3]] == [1 / 3, 0, 1 / 3]
    assert mean["benign_alerting_in_any_member"] == 2
    assert mean["benign_alerting_in_every_member"] == 0


def test_two_copies_of_one_model_average_to_that_model() -> None:
    path = shared_data_dir() / "other-datasets" / "cse-cic-ids2018-improved" / "sample-9-days.csv"
    frame = load_flows([path]).iloc[:300].reset_index(drop=True).assign(source_file=path.name)
    model = shipped_model_dir()
    rows = measure([model, model], {"2018": frame})
    assert [row["model"] for row in rows] == [str(model), str(model), "mean of 2", "median of 2"]
    scores = Scorer.load(model, calibrated=False).score_frame(frame)
    alone = metrics(frame["is_attack"].to_numpy(), scores)
    for row in rows:
        assert row["false_alarm_rate"] == alone["false_alarm_rate"]
        assert row["recall"] == alone["recall"]
    benign_alarms = round(alone["false_alarm_rate"] * (frame["is_attack"] == 0).sum())
    assert rows[2]["benign_alerting_in_every_member"] == benign_alarms
    assert "| 2018 | mean of 2 |" in markdown(rows)
