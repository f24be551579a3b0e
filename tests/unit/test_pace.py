"""model.pace: the same flows at another pace, scored by the shipped model."""

from __future__ import annotations

import numpy as np

from model.extractors import rescale_time
from model.pace import markdown, measure
from stream_ids.artifacts import shipped_model_dir
from stream_ids.datasets import shared_data_dir
from stream_ids.loader import load_flows
from stream_ids.scorer import Scorer


def test_pace_one_is_the_offline_verdicts_and_other_paces_are_rescaled() -> None:
    path = shared_data_dir() / "other-datasets" / "cse-cic-ids2018-improved" / "sample-9-days.csv"
    frame = load_flows([path]).iloc[:400].reset_index(drop=True).assign(source_file=path.name)
    rows = measure([shipped_model_dir()], [0.1, 1.0], {"2018": frame})
    assert [(row["source"], row["factor"]) for row in rows] == [("2018", 0.1), ("2018", 1.0)]
    scorer = Scorer.load(shipped_model_dir(), calibrated=False)
    alerts = scorer.score_frame(frame) >= scorer.threshold
    truth = frame["is_attack"].to_numpy()
    assert rows[1]["false_alarm_rate"] == alerts[truth == 0].mean()
    assert rows[1]["recall"] == alerts[truth == 1].mean()
    # the other pace is these flows rescaled, scored the same way
    faster = scorer.score_frame(rescale_time(frame, np.full(len(frame), 0.1))) >= scorer.threshold
    assert rows[0]["false_alarm_rate"] == faster[truth == 0].mean()
    assert rows[0]["recall"] == faster[truth == 1].mean()
    text = markdown(rows)
    assert f"| {shipped_model_dir()} | 2018 | x0.1 |" in text
    assert np.isclose(float(text.splitlines()[3].split("|")[4].strip(" %")),
                      100 * rows[1]["false_alarm_rate"], atol=0.005)
