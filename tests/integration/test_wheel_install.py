"""``pip install .`` (a wheel, not the editable tree) gives a working ``stream-ids``.

The wheel is built from this checkout and installed, without dependencies, into a fresh venv
outside the repository; that venv sees the project venv's third-party packages through a
``.pth`` line (so TensorFlow is not downloaded again) but not its editable ``stream_ids``. The
demo then runs from a temporary folder with no shared data, so only what the wheel carries
(the shipped model, the embedded sample) can be used, against the test broker.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IN_WHEEL = (
    "model/shipped/model.keras",
    "model/shipped/manifest.json",
    "model/shipped/transform.json",
    "stream_ids/resources/sample/cicids2017-sample.csv.gz",
    "stream_ids/resources/sample/README.md",
    "stream_ids/resources/broker/kafka-pom.xml",
    "stream_ids/resources/broker/log4j2.properties",
    "stream_ids/dashboard/static/index.html",
    "producers/replay.py",
)


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            timeout=600, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)])
    (wheel,) = dist.glob("stream_ids-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in IN_WHEEL if name not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(metadata).decode()

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
                .stdout.strip())
    # the project venv's packages (TensorFlow, Faust, ...), after the wheel's own
    (site / "_project_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          str(wheel)])
    return venv


def test_wheel_installs_the_package_not_the_checkout(wheel_venv: Path, tmp_path: Path) -> None:
    code = "import stream_ids, model, producers; print(stream_ids.__file__, model.__file__)"
    out = _run([str(wheel_venv / "bin" / "python"), "-c", code], cwd=tmp_path).stdout
    assert str(ROOT) not in out and str(wheel_venv) in out
    version = _run([str(wheel_venv / "bin" / "stream-ids"), "--version"], cwd=tmp_path).stdout
    assert re.match(r"stream-ids \S+, model cnn-lstm-\S+ ", version), version
    assert str(wheel_venv) in version  # the shipped model inside the installed package


def test_demo_from_the_wheel(wheel_venv: Path, tmp_path: Path, kafka_bootstrap: str,
                             unique_topic: Callable[[str], str]) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAM_IDS_")},
        "STREAM_IDS_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_IDS_SHARED_DATA": str(tmp_path / "no-shared-data"),
        "STREAM_IDS_APP_ID": unique_topic("wheel-demo"),
        "STREAM_IDS_DATA_DIR": str(tmp_path / "state"),
        **{f"STREAM_IDS_TOPIC_{name.upper()}": unique_topic(name)
           for name in ("flows", "verdicts", "alerts", "stats", "dead_letter")},
        "STREAM_IDS_TOPIC_PARTITIONS": "2",
    }
    result = subprocess.run(
        [str(wheel_venv / "bin" / "stream-ids"), "demo", "--limit", "2000"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the embedded CICIDS2017 sample" in result.stderr
    assert re.search(r"flows replayed\s*│\s*2,000", result.stdout), result.stdout
    assert re.search(r"verdicts\s*│\s*2,000\s", result.stdout), result.stdout
    noisy = [line for line in result.stderr.splitlines()
             if re.search(r"error|warning|traceback|%\d\|", line, re.IGNORECASE)]
    assert not noisy, result.stderr
