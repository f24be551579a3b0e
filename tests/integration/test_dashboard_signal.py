"""Ctrl-C stops the dashboard even when the kernel hands SIGINT to another thread than the main
one, and when it was started from a background job (SIGINT inherited as ignored)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYS_TGKILL = 234  # x86-64


def _blocks(pid: int, tid: int, signum: int) -> bool:
    for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="tgkill by syscall number is written for Linux on x86-64")
def test_sigint_to_a_kafka_thread_stops_the_dashboard(kafka_bootstrap: str, tmp_path: Path) -> None:
    log = tmp_path / "dashboard.txt"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stream_ids.cli", "dashboard", "--bootstrap", kafka_bootstrap,
             "--port", "0"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            # what a shell's background job (`cmd &` without job control) passes on
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops it" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.3)
        # a thread other than the main one that the kernel may pick for a process-wide SIGINT:
        # one that does not block it (the HTTP server's or the feed's; librdkafka's block all)
        threads = [tid for tid in map(int, os.listdir(f"/proc/{process.pid}/task"))
                   if tid != process.pid and not _blocks(process.pid, tid, signal.SIGINT)]
        assert threads, "the dashboard runs Python threads"
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(SYS_TGKILL, process.pid, threads[-1], signal.SIGINT) == 0
        assert process.wait(timeout=20) == 0, log.read_text()
        assert "stopping" in log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
