"""``evaluate`` and ``score`` on labelled, unlabelled, placeholder-labelled, bad and empty files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stream_ids.commands.evaluate import evaluate
from stream_ids.commands.score import verdict_frame
from stream_ids.datasets import shared_data_dir
from stream_ids.offline import score_frame
from stream_ids.scorer import Scorer

HEAD_85 = "cicids2017-original/Friday-Afternoon-DDoS.head.csv"  # 299 benign flows
DDOS_85 = "cicids2017-original/Friday-Afternoon-DDoS.sample.csv"  # 1,000 DDoS flows


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer.load()


def _raw(relative: str) -> pd.DataFrame:
    """The published rows, header names stripped of their leading spaces."""
    raw = pd.read_csv(shared_data_dir() / relative, encoding="latin-1")
    return raw.rename(columns=str.strip)


def test_unlabelled_files_report_alert_rates_and_empty_files_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unlabelled = tmp_path / "capture.csv"
    _raw(DDOS_85).drop(columns=["Label"]).to_csv(unlabelled, index=False)
    placeholder = tmp_path / "java-online.csv"
    raw = _raw(HEAD_85)
    raw["Label"] = "NeedManualLabel"
    raw.to_csv(placeholder, index=False)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")

    result = evaluate(None, [unlabelled, placeholder, empty])

    assert result["labelled"] == 0 and result["unlabelled"] == 1299
    assert "accuracy" not in result  # no labels, no metrics
    by_name = {Path(entry["file"]).name: entry for entry in result["files"]}
    assert by_name["empty.csv"] == {"file": str(empty), "flows": 0, "skipped": "empty"}
    assert any("empty.csv" in message for message in result["skipped"])
    assert "empty.csv" in capsys.readouterr().err
    ddos = by_name["capture.csv"]
    assert ddos["flows"] == 1000 and "metrics" not in ddos
    assert ddos["alerts"] > 900  # the shipped model was trained on these DDoS flows
    assert ddos["alert_rate"] == pytest.approx(ddos["alerts"] / (1000 - ddos["dead_letters"]))
    assert set(ddos["score_quantiles"]) == {"p50", "p90", "p99", "p99.9"}
    # CICFlowMeter's placeholder label reads as unlabelled: no metrics, only the alert rate
    # (299 benign flows the shipped model trained on: at most 1% alert).
    online = by_name["java-online.csv"]
    assert online["flows"] == 299 and "metrics" not in online
    assert online["alerts"] <= 3


def test_labelled_files_keep_the_metrics(tmp_path: Path) -> None:
    result = evaluate(None, [shared_data_dir() / HEAD_85, shared_data_dir() / DDOS_85])
    assert result["labelled"] == result["n"] == 1299 - result["dead_letters"]
    assert result["accuracy"] > 0.95
    per_file = [entry["metrics"] for entry in result["files"]]
    assert per_file[0]["false_alarm_rate"] is not None and per_file[0]["recall"] is None
    assert per_file[1]["recall"] is not None and per_file[1]["false_alarm_rate"] is None


def test_score_follows_the_worker_rules(tmp_path: Path, scorer: Scorer) -> None:
    raw = _raw(DDOS_85).head(200)
    raw.loc[5, "Total Fwd Packets"] = -3
    path = tmp_path / "flows.csv"
    raw.to_csv(path, index=False)
    verdicts = verdict_frame(None, [path])
    assert len(verdicts) == 200 and verdicts["row"].tolist() == list(range(200))
    assert verdicts.loc[5, "verdict"] == "dead_letter"
    assert verdicts.loc[5, "reason"] == "negative_value" and np.isnan(verdicts.loc[5, "score"])
    valid = verdicts["verdict"] != "dead_letter"
    assert valid.sum() == 199
    assert set(verdicts.loc[valid, "verdict"]) <= {"alert", "benign"}
    alerts = verdicts.loc[valid, "score"] >= scorer.threshold
    assert (alerts == (verdicts.loc[valid, "verdict"] == "alert")).all()
    # The invalid flow never enters its host's window: the others score as if it were absent.
    from stream_ids.loader import load_flows

    frame = load_flows(path)
    expected = scorer.score_frame(frame.drop(index=5).reset_index(drop=True))
    np.testing.assert_allclose(verdicts.loc[valid, "score"].to_numpy(), expected, atol=1e-6)
    assert score_frame(scorer, frame).valid.sum() == 199


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_score_command_writes_one_verdict_per_flow(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"verdicts{suffix}"
    folder = tmp_path / "capture"
    folder.mkdir()
    _raw(HEAD_85).head(40).to_csv(folder / "a.csv", index=False)
    result = subprocess.run(
        [sys.executable, "-m", "stream_ids.cli", "score", str(folder), "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "40 flows" in result.stderr
    if suffix == ".csv":
        rows = pd.read_csv(out)
    else:
        rows = pd.DataFrame([json.loads(line) for line in out.read_text().splitlines()])
    assert len(rows) == 40 and set(rows["verdict"]) <= {"alert", "benign", "dead_letter"}
    assert rows["score"].between(0, 1).all()


def test_score_refuses_an_unknown_output_format(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream_ids.cli", "score", str(shared_data_dir() / HEAD_85),
         "--out", str(tmp_path / "verdicts.parquet")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 2 and ".csv or .jsonl" in result.stderr
