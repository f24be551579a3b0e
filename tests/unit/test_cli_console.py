"""The console of ``stream-ids``: help of every subcommand, one line when Kafka is missing,
``--loop`` not read by faust, TensorFlow's start-up chatter off, ``--version`` with the model.

Commands run as subprocesses of the installed console script, as a user types them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stream_ids import cli, quiet
from stream_ids.faust_argv import FaustArgvCheckError, _check

ROOT = Path(__file__).resolve().parents[2]
STREAM_IDS = str(Path(sys.executable).parent / "stream-ids")
SAMPLE = ROOT / "stream_ids" / "resources" / "sample"


def subcommands() -> list[str]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")  # argparse keeps them here
    return sorted(action.choices)


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [STREAM_IDS, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, **(env or {})}, check=False,
    )


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_subcommand_is_known() -> None:
    assert {"alerts", "broker", "dashboard", "demo", "evaluate", "relay", "replay", "stats",
            "train", "worker"} <= set(subcommands())


@pytest.mark.parametrize("command", [[], *([c] for c in subcommands())],
                         ids=lambda c: " ".join(c) or "top")
def test_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: stream-ids")
    assert result.stderr == ""


def test_version_names_the_model() -> None:
    result = run("--version")
    manifest = json.loads((ROOT / "model" / "shipped" / "manifest.json").read_text())
    assert result.returncode == 0
    assert result.stdout.startswith("stream-ids 0.")
    assert manifest["model_version"] in result.stdout


NO_BROKER_COMMANDS = [
    ["worker"],
    ["alerts"],
    ["alerts", "--follow"],
    ["stats"],
    ["dashboard", "--port", "0"],
    ["replay", str(SAMPLE), "--loop", "2"],  # --loop: faust must not read it
    ["relay", "--follow", "flows.csv"],
]


@pytest.mark.parametrize("command", NO_BROKER_COMMANDS, ids=" ".join)
def test_no_broker_is_one_line(command: list[str]) -> None:
    address = f"127.0.0.1:{closed_port()}"
    result = run(*command, env={"STREAM_IDS_BOOTSTRAP_SERVERS": address})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert address in errors[0]
    assert "stream-ids broker start" in errors[0] and "STREAM_IDS_BOOTSTRAP_SERVERS" in errors[0]
    assert "Traceback" not in result.stderr and "|FAIL|" not in result.stderr
    # replay says where its flows come from; nothing else is printed
    assert len(lines) <= 2, result.stderr


def test_replay_reads_a_folder_like_a_file_list() -> None:
    address = f"127.0.0.1:{closed_port()}"
    missing = run("replay", "no/such/folder", env={"STREAM_IDS_BOOTSTRAP_SERVERS": address})
    assert missing.returncode == 2 and "no/such/folder" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_demo_checks_its_inputs_before_starting_anything(tmp_path: Path) -> None:
    address = f"127.0.0.1:{closed_port()}"
    result = run("demo", str(tmp_path / "missing.csv"),
                 env={"STREAM_IDS_BOOTSTRAP_SERVERS": address,
                      "STREAM_IDS_STATE_DIR": str(tmp_path / "state")})
    assert result.returncode == 2
    assert "missing.csv" in result.stderr and "Traceback" not in result.stderr
    assert "starting" not in result.stdout + result.stderr  # no broker, no worker
    assert not (tmp_path / "state").exists()


def test_relay_follow_refuses_a_folder() -> None:
    result = run("relay", "--follow", str(SAMPLE))
    assert result.returncode == 2
    assert "--watch" in result.stderr and "Traceback" not in result.stderr


def test_faust_does_not_read_the_command_line() -> None:
    code = (
        "import sys; sys.argv = ['stream-ids', 'replay', '--loop', '2', '--datadir', '/x'];"
        "from stream_ids.faust_argv import import_faust; import os; import_faust();"
        "print(os.environ.get('FAUST_LOOP'), os.environ.get('FAUST_DATADIR'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAUST_", "F_"))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "None"]


def test_faust_argv_check_fails_loudly_when_faust_changes() -> None:
    import types

    changed = types.ModuleType("faust")
    with pytest.raises(FaustArgvCheckError, match=r"faust_argv\.py"):
        _check(changed, [])
    reads_elsewhere = types.ModuleType("faust")
    reads_elsewhere._extract_arg_from_argv = lambda argv=("other",): None  # type: ignore[attr-defined]
    with pytest.raises(FaustArgvCheckError):
        _check(reads_elsewhere, [])


def test_tensorflow_starts_quietly() -> None:
    code = "from stream_ids import quiet; quiet.start_tensorflow(); print('started')"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                             quiet.LOG_LEVEL_ENV)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"
    assert result.stderr == ""


def test_filtered_stderr_keeps_what_is_not_noise(capfd: pytest.CaptureFixture[str]) -> None:
    with quiet.filtered_stderr():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see...\n")
        os.write(2, b"E0000 something real failed\n")
    assert capfd.readouterr().err == "E0000 something real failed\n"


def test_a_kafka_error_after_the_check_is_one_line(monkeypatch, capsys) -> None:
    from confluent_kafka import KafkaError, KafkaException

    def handler(_args: object) -> int:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))

    monkeypatch.setattr(cli, "build_parser", _parser_with(handler))
    assert cli.main(["x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Kafka:") and len(err.strip().splitlines()) == 1


def _parser_with(handler):
    import argparse

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        parser.add_argument("--verbose", action="store_true")
        sub = parser.add_subparsers(dest="command")
        sub.add_parser("x").set_defaults(handler=handler)
        return parser

    return build


def test_ctrl_c_works_when_sigint_was_inherited_as_ignored() -> None:
    """A background job's SIGINT is ignored; the CLI restores Python's Ctrl-C handler."""
    import signal

    from stream_ids.cli import restore_interrupt

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restore_interrupt()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        custom = signal.signal(signal.SIGINT, lambda *_: None)  # a handler someone set: kept
        restore_interrupt()
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        del custom
    finally:
        signal.signal(signal.SIGINT, previous)
