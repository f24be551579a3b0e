"""Per-site calibration: the threshold rule, the file beside the model, and the command."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stream_ids.artifacts import shipped_model_dir
from stream_ids.calibration import (
    CALIBRATION_FILE,
    Calibration,
    fit_threshold,
    flows_needed,
    make_calibration,
    vouches_for_target,
)
from stream_ids.datasets import shared_data_dir
from stream_ids.errors import ArtifactError, ConfigurationError
from stream_ids.scorer import Scorer


def test_threshold_lets_the_target_share_of_clean_scores_alert() -> None:
    clean = np.linspace(0.0, 0.999, 1000, dtype=np.float32)  # 1,000 distinct scores
    fitted = fit_threshold(clean, target=0.01)
    assert np.sum(clean >= fitted["threshold"]) == 10  # exactly 1% of them
    assert fitted["expected_alert_rate"] == pytest.approx(0.01)
    assert fitted["ceiling"] is None and fitted["capped"] is False


def test_the_attack_floor_caps_the_threshold() -> None:
    clean = np.linspace(0.0, 1.0, 500, dtype=np.float32)
    attacks = np.linspace(0.5, 1.0, 100, dtype=np.float32)
    fitted = fit_threshold(clean, target=0.001, attack_scores=attacks, min_recall=0.9)
    assert fitted["capped"] is True
    assert fitted["threshold"] == fitted["ceiling"] < fitted["clean_quantile_threshold"]
    assert np.mean(attacks >= fitted["threshold"]) >= 0.9
    assert fitted["reference_recall"] == pytest.approx(np.mean(attacks >= fitted["threshold"]))


def test_the_assured_rate_is_the_conformal_bound_of_the_flows_used() -> None:
    clean = np.linspace(0.0, 0.999, 1000, dtype=np.float32)
    # 10 of 1,000 flows alert: a new flow like them alerts with chance <= 11/1,001
    assert fit_threshold(clean, target=0.01)["assured_alert_rate"] == pytest.approx(11 / 1001)
    # 112 flows cannot vouch for 0.1%: none of them alert, and the bound is still 1/113
    few = fit_threshold(clean[:112], target=0.001)
    assert few["expected_alert_rate"] == 0.0
    assert few["assured_alert_rate"] == pytest.approx(1 / 113)
    # 999 flows are the fewest whose bound reaches 0.1% (none of them alerting)
    assert fit_threshold(np.linspace(0, 0.9, 999), 0.001)["assured_alert_rate"] <= 0.001
    assert fit_threshold(np.linspace(0, 0.9, 998), 0.001)["assured_alert_rate"] > 0.001
    # 1,144 flows: one may alert, and the bound is 2/1,145, almost twice the target
    assert fit_threshold(np.linspace(0, 0.9, 1144), 0.001)["assured_alert_rate"] == 2 / 1145


@pytest.mark.parametrize("target", [0.01, 0.002, 0.001, 0.0001])
def test_from_flows_needed_on_the_bound_stays_within_a_quarter_of_the_target(target) -> None:
    needed = flows_needed(target)
    assert flows_needed(0.001) == 3995 and flows_needed(0.01) == 395
    for flows in range(needed, needed + 3 * needed):
        bound = (math.floor(target * flows) + 1) / (flows + 1)
        assert bound <= 1.25 * target + 1e-12
    # and just below it, some count of flows exceeds it
    assert any(
        (math.floor(target * flows) + 1) / (flows + 1) > 1.25 * target
        for flows in range(needed // 2, needed)
    )


def test_the_command_warns_when_the_flows_cannot_vouch_for_the_target() -> None:
    from stream_ids.commands.calibrate import assurance_line

    def line(flows: int, target: float) -> str:
        return assurance_line(make_calibration(
            site="lab", model_version="v", model_sha256="a" * 64,
            clean_scores=np.linspace(0, 0.9, flows), attack_scores=None, target=target,
            min_recall=0.95, sources=["a.csv"],
        ))

    assert line(112, 0.001) == (
        "[yellow]warning[/yellow]: 112 flows vouch for at most 0.885% alerts on later clean "
        "traffic like them (on average), not the 0.100% target: that needs at least 3,995 "
        "clean flows"
    )
    assert line(999, 0.001) == (
        "999 flows vouch for at most 0.100% alerts on later clean traffic like them (on average)"
    )
    # 1,144 flows at 0.1%: 2/1,145 = 0.175% is not within a quarter of the target
    assert line(1144, 0.001).startswith(
        "[yellow]warning[/yellow]: 1,144 flows vouch for at most 0.175%"
    )
    assert line(5000, 0.001) == (
        "5,000 flows vouch for at most 0.120% alerts on later clean traffic like them (on average)"
    )
    assert line(112, 0.01).endswith("not the 1.000% target: that needs at least 395 clean flows")
    capped = assurance_line(make_calibration(
        site="lab", model_version="v", model_sha256="a" * 64,
        clean_scores=np.linspace(0, 0.9, 5000), attack_scores=np.full(100, 0.5), target=0.001,
        min_recall=0.95, sources=["a.csv"],
    ))
    assert capped.endswith("the attack floor set the threshold, because this traffic scores as "
                           "high as known attacks")


def test_a_file_written_before_the_assured_rate_still_reads(tmp_path: Path) -> None:
    state = json.loads(_calibration("a" * 64, np.linspace(0, 0.9, 300)).canonical_json())
    assert state["version"] == 2
    del state["assured_alert_rate"]
    state["version"] = 1
    path = tmp_path / CALIBRATION_FILE
    path.write_text(json.dumps(state))
    old = Calibration.read(path)
    assert old.assured_alert_rate is None and vouches_for_target(old) is None
    state["version"] = 3
    path.write_text(json.dumps(state))
    with pytest.raises(ArtifactError, match="calibration version 3 unknown"):
        Calibration.read(path)


def test_too_few_flows_or_a_bad_target_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 100"):
        fit_threshold(np.zeros(10), 0.01)
    with pytest.raises(ConfigurationError, match="strictly between"):
        fit_threshold(np.zeros(200), 1.5)


def _calibration(sha: str, threshold_scores: np.ndarray) -> Calibration:
    return make_calibration(
        site="lab", model_version="v", model_sha256=sha, clean_scores=threshold_scores,
        attack_scores=None, target=0.01, min_recall=0.95, sources=["a.csv"],
    )


def test_the_file_round_trips_and_is_refused_for_another_model(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(shipped_model_dir(), model, ignore=shutil.ignore_patterns(CALIBRATION_FILE))
    manifest = json.loads((model / "manifest.json").read_text())
    calibration = _calibration(manifest["sha256"]["model.keras"],
                               np.linspace(0, 0.9, 300, dtype=np.float32))
    path = calibration.write(model)
    assert Calibration.read(path) == calibration
    scorer = Scorer.load(model)
    assert scorer.calibration == calibration and scorer.threshold == calibration.threshold
    assert scorer.model_threshold == manifest["threshold"]
    assert Scorer.load(model, calibrated=False).threshold == manifest["threshold"]
    _calibration("0" * 64, np.linspace(0, 0.9, 300, dtype=np.float32)).write(model)
    with pytest.raises(ArtifactError, match="made for model 0000"):
        Scorer.load(model)
    path.write_text('{"format": "something else"}')
    with pytest.raises(ArtifactError, match="not a stream-ids calibration"):
        Scorer.load(model)


def test_calibrate_command_writes_the_file_and_score_uses_it(tmp_path: Path) -> None:
    """Calibrate on one half of another network's benign flows, score the other half.

    CSE-CIC-IDS2018's benign flows (AWS hosts, not in the shipped model's training data) raise
    ~10% false alarms at the model's own threshold (docs/generalization.md).
    """
    model = tmp_path / "model"
    shutil.copytree(shipped_model_dir(), model, ignore=shutil.ignore_patterns(CALIBRATION_FILE))
    flows = pd.read_csv(shared_data_dir() / "other-datasets/cse-cic-ids2018-improved"
                        / "sample-9-days.csv")
    benign = flows.loc[flows["Label"] == "BENIGN"]
    halves = {name: tmp_path / name for name in ("first", "second")}
    for index, folder in enumerate(halves.values()):
        folder.mkdir()
        benign.iloc[index::2].to_csv(folder / "flows.csv", index=False)

    def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stream_ids.cli", *arguments],
                              capture_output=True, text=True, timeout=300, check=False)

    before = cli("score", str(halves["second"]), "--model", str(model),
                 "--out", str(tmp_path / "before.csv"))
    assert before.returncode == 0, before.stderr
    done = cli("calibrate", str(halves["first"]), "--site", "lab-a", "--target", "0.002",
               "--model", str(model))
    assert done.returncode == 0, done.stderr
    written = Calibration.read(model / CALIBRATION_FILE)
    assert written.site == "lab-a" and written.flows_used == len(benign.iloc[0::2])
    # ~1,100 flows at 0.2%: two may alert, 3 / 1,131 = 0.27% is more than a quarter over
    assert written.assured_alert_rate is not None
    assert written.assured_alert_rate > written.expected_alert_rate
    said = " ".join(done.stderr.split())
    assert f"vouch for at most {written.assured_alert_rate:.3%}" in said
    assert ("warning" in said) == (not vouches_for_target(written))
    assert written.target_alert_rate == 0.002
    assert written.reference_recall is not None and written.reference_recall >= 0.95
    after = cli("score", str(halves["second"]), "--model", str(model),
                "--out", str(tmp_path / "after.csv"))
    assert after.returncode == 0, after.stderr
    alerts_before = (pd.read_csv(tmp_path / "before.csv")["verdict"] == "alert").sum()
    alerts_after = (pd.read_csv(tmp_path / "after.csv")["verdict"] == "alert").sum()
    assert alerts_before > 50 and alerts_after < alerts_before / 2
    if not written.capped:  # the other half of the same traffic lands near the target
        assert alerts_after / len(benign.iloc[1::2]) <= 5 * written.target_alert_rate
