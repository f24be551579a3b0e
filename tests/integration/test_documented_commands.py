"""Every command line of the README's and docs/operations.md's ``bash`` blocks, run as printed.

Each documented line is matched by exactly one rule below (a new line without a rule fails the
test, so the docs and this test move together). Lines run as subprocesses through ``bash -c``
from the repository root, with ``stream-ids`` of this venv on ``PATH``, against the test broker
with topics and a consumer group of their own, and without shared data (the embedded sample is
the default). Kinds:

- ``run``: must exit 0 with ``expect`` in its output;
- ``eventually``: as ``run``, retried while the worker has not reported yet (``stats``);
- ``background``: started, must print ``expect``, kept running until the end (the worker);
- ``service``: started, must keep running or exit 0, is stopped with Ctrl-C once it printed
  ``expect`` (or after ``wait_s``), and must have printed ``expect`` by then;
- ``skip``: not run here, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/operations.md")


@dataclass(frozen=True)
class Rule:
    pattern: str
    kind: str  # run | eventually | background | service | skip
    expect: str = ""  # a regex the output must contain (run, eventually, background, service)
    reason: str = ""  # skip
    wait_s: float = 120.0  # service/background: how long to wait for ``expect`` before stopping


RULES = (
    Rule(r"^python3 -m venv ", "skip", reason="a new machine's set-up; CI runs .ci/run instead"),
    Rule(r"^bash \.ci/run$", "skip", reason="CI's own command: this test runs inside it"),
    Rule(r"^stream-ids broker (start|stop)$", "skip",
         reason="manages the machine's broker on 9092; the tests' broker is already there "
         "(tests/conftest.py) and the demo starts and stops one (test_wheel_install)"),
    Rule(r"--bootstrap kafka:9092", "skip", reason="a container's broker address"),
    Rule(r"^kcat ", "skip", reason="kcat is a third-party client"),
    Rule(r"^kafka-configs\.sh |^--entity-name |^--add-config ", "skip",
         reason="Kafka's own admin tool (and its continuation lines), run once against an "
         "existing production changelog topic; new topics are created with these settings"),
    Rule(r"^stream-ids calibrate ", "skip",
         reason="writes calibration.json beside a site's model folder (/srv/model in the "
         "example); tested in tests/unit/test_calibration.py and test_calibration_stream.py"),
    Rule(r"^stream-ids worker$", "background", expect=r"stream-ids worker \S+: model "),
    Rule(r"^stream-ids replay( |$)", "run", expect=r"delivered \S*5,?651|delivered \S*11,?302"),
    Rule(r"^stream-ids alerts$", "run", expect=r"last \d+ of \d+"),
    Rule(r"^stream-ids stats$", "eventually", expect=r"cumulative"),
    Rule(r"^stream-ids dashboard( --from-beginning)?$", "service", expect=r"dashboard on "),
    Rule(r"^stream-ids evaluate ", "run", expect=r"accuracy"),
    Rule(r"^stream-ids score ", "run", expect=r"5651 flows -> verdicts\.csv"),
    Rule(r"^stream-ids relay --(follow|watch) ", "service", expect=r"relaying "),
    # into a pipe the live table is printed once, when stopped: let it read, then stop it
    Rule(r"^stream-ids alerts --follow", "service", expect=r"last \d+ of \d+", wait_s=5.0),
    Rule(r"^stream-ids alerts --json --follow \| jq ", "service", expect=r'"dst_port":\s*22'),
)


def documented_lines() -> list[tuple[str, str]]:
    """(document, command) of every line of every ```bash block, comments removed."""
    found = []
    for name in DOCUMENTS:
        text = (ROOT / name).read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
            for line in block.splitlines():
                command = re.sub(r"\s+#\s.*$", "", line).strip()
                if command and not command.startswith("#"):
                    found.append((name, command))
    return found


def rule_for(command: str) -> Rule:
    matches = [rule for rule in RULES if re.search(rule.pattern, command)]
    assert len(matches) == 1, f"{command!r} matches {len(matches)} rules: add one to this test"
    return matches[0]


def test_every_documented_line_has_a_rule() -> None:
    lines = documented_lines()
    assert len(lines) >= 15
    kinds = {rule_for(command).kind for _doc, command in lines}
    assert {"run", "background", "service", "skip"} <= kinds


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class Launched:
    def __init__(self, command: str, env: dict[str, str], folder: Path) -> None:
        self.command = command
        self.out = folder / "out.txt"
        self.err = folder / "err.txt"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(  # the line as printed, through a shell
                ["bash", "-c", command], cwd=ROOT, env=env, stdout=out, stderr=err,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def wait_for(self, expect: str, deadline_s: float) -> bool:
        """True once ``expect`` is printed; False if the process ended or the deadline passed."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if re.search(expect, self.output()):
                return True
            if self.process.poll() is not None:
                return bool(re.search(expect, self.output()))
            time.sleep(0.5)
        return False

    def interrupt(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)
        return self.process.returncode


def test_documented_commands_work_as_written(
    kafka_bootstrap: str, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAM_IDS_")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "STREAM_IDS_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_IDS_SHARED_DATA": str(tmp_path / "no-shared-data"),  # the embedded sample
        "STREAM_IDS_APP_ID": unique_topic("docs"),
        "STREAM_IDS_DATA_DIR": str(tmp_path / "state"),
        "STREAM_IDS_METRICS_PORT": "0",
        "COLUMNS": "160",  # rich wraps tables to the terminal width
        "STREAM_IDS_TOPIC_PARTITIONS": "2",
        **{f"STREAM_IDS_TOPIC_{name.upper()}": unique_topic(name)
           for name in ("flows", "verdicts", "alerts", "stats", "dead_letter")},
    }
    background: list[Launched] = []
    ran: list[str] = []
    skipped: list[str] = []
    try:
        for index, (document, command) in enumerate(documented_lines()):
            rule = rule_for(command)
            where = f"{document}: {command}"
            if rule.kind == "skip":
                skipped.append(f"{command} ({rule.reason})")
                continue
            if re.search(r"\|\s*jq\b", command) and shutil.which("jq") is None:
                skipped.append(f"{command} (jq is not installed)")
                continue
            if "dashboard" in command and not _port_free(8088):
                skipped.append(f"{command} (port 8088 is taken on this machine)")
                continue
            folder = tmp_path / f"line-{index:02d}"
            folder.mkdir()
            if rule.kind in ("run", "eventually"):
                attempts = 30 if rule.kind == "eventually" else 1
                for _ in range(attempts):
                    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env,
                                            capture_output=True, text=True, timeout=300,
                                            check=False)
                    output = result.stdout + result.stderr
                    if result.returncode == 0 and re.search(rule.expect, output):
                        break
                    time.sleep(2)
                assert result.returncode == 0, f"{where}: exit {result.returncode}\n{output}"
                assert re.search(rule.expect, output), f"{where}: no {rule.expect!r}\n{output}"
                assert "Traceback" not in output, f"{where}\n{output}"
            else:
                launched = Launched(command, env, folder)
                printed = launched.wait_for(rule.expect, rule.wait_s)
                if rule.kind == "background":
                    assert printed, f"{where}: no {rule.expect!r}\n{launched.output()}"
                    assert launched.process.poll() is None, f"{where} ended\n{launched.output()}"
                    background.append(launched)
                else:
                    assert launched.process.poll() is None or launched.process.returncode == 0, (
                        f"{where}: exit {launched.process.returncode}\n{launched.output()}"
                    )
                    status = launched.interrupt()
                    output = launched.output()
                    assert re.search(rule.expect, output), f"{where}: no {rule.expect!r}\n{output}"
                    assert status in (0, 130, -signal.SIGINT), f"{where}: exit {status}\n{output}"
                assert "Traceback" not in launched.output(), f"{where}\n{launched.output()}"
            ran.append(command)
    finally:
        for launched in background:
            launched.interrupt()
    assert len(ran) >= 10, f"ran {ran}, skipped {skipped}"
    print("ran:", *ran, "skipped:", *skipped, sep="\n  ")
