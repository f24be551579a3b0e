"""The embedded CICIDS2017 sample and where commands find flows when given no path."""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from stream_ids import datasets
from stream_ids.loader import load_flows

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SHA256 = "a32409c2efd60897c871cb2a74c79932a4a1807cdc77096819e1c0bbfe6b3ae7"


def test_sample_is_small_real_and_complete() -> None:
    path = datasets.embedded_sample()
    assert path.stat().st_size < 3_000_000
    with gzip.open(path, "rt", encoding="latin-1") as handle:
        header = next(csv.reader(handle))
    assert len(header) == 91 and header[-2:] == ["Label", "Attempted Category"]
    frame = load_flows(path)
    assert len(frame) == 5651
    assert frame["label"].nunique() == 16  # every label of the corrected CICIDS2017
    assert (frame["label"] == "BENIGN").sum() == 1500
    stamps = frame["timestamp"].to_numpy()
    assert np.all(np.diff(stamps) >= 0), "rows must be in time order (per-host order kept)"
    assert (datasets.SAMPLE_DIR / "README.md").read_text().count("Engelen") >= 1


def test_default_paths_fall_back_to_the_sample(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STREAM_IDS_SHARED_DATA", str(tmp_path / "absent"))
    assert datasets.default_flow_paths() == [datasets.embedded_sample()]
    assert "embedded" in datasets.describe_flow_paths(datasets.default_flow_paths())


def test_default_paths_prefer_the_shared_rows(tmp_path: Path, monkeypatch) -> None:
    improved = tmp_path / "cicids2017-improved"
    improved.mkdir()
    for name in ("b.csv", "a.csv"):
        (improved / name).write_text("x\n")
    monkeypatch.setenv("STREAM_IDS_SHARED_DATA", str(tmp_path))
    assert datasets.default_flow_paths() == [improved / "a.csv", improved / "b.csv"]


def test_sample_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    source = datasets.shared_data_candidate() / "cicids2017-improved"
    if not source.is_dir():
        pytest.skip(f"{source} not present: the sample is checked against its sha256 only")
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "scripts/make_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "sample.csv.gz"
    data = module.write(module.build(source, 2017, 400, 1500), out)
    assert hashlib.sha256(data).hexdigest() == SAMPLE_SHA256
    assert hashlib.sha256(datasets.embedded_sample().read_bytes()).hexdigest() == SAMPLE_SHA256
