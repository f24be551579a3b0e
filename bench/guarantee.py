"""At-least-once vs exactly-once on the crash scenario: duplicates, losses, throughput.

For each processing guarantee (``STREAM_IDS_PROCESSING_GUARANTEE``) it runs real ``stream-ids
worker`` subprocesses against a broker twice: steady (one worker, no failure: throughput) and
crash (SIGKILL at ~30% and ~70% of the verdicts, restart each time, as
``tests/integration/test_reliability_crash.py``). Verdicts are read ``read_committed``.

    python bench/guarantee.py --bootstrap 127.0.0.1:59092 --flows 20000

Prints one JSON line per run and a table; docs/reliability.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "integration")]

from reliability_harness import (  # noqa: E402
    BackgroundReplay,
    ReliabilityStream,
    summarise,
)

from producers.replay import load_replay_frame  # noqa: E402
from stream_ids.datasets import improved_csvs  # noqa: E402


def run(bootstrap: str, frame, guarantee: str, crash: bool, expected) -> dict:
    n = len(frame)
    tmp = Path(tempfile.mkdtemp(prefix="guarantee-"))
    stream = ReliabilityStream(bootstrap, tmp, STREAM_IDS_PROCESSING_GUARANTEE=guarantee)
    try:
        with stream.running("g1") as tracker:
            started = time.monotonic()
            BackgroundReplay(stream.settings, frame, "g").start()
            if crash:
                for fraction, victim, successor in ((0.3, "g1", "g2"), (0.7, "g2", "g3")):
                    tracker.wait_unique(int(fraction * n), timeout=900)
                    stream.signal_worker(victim, signal.SIGKILL)
                    stream.start_worker(successor)
            tracker.wait_unique(n, timeout=900)
            seconds = time.monotonic() - started
            time.sleep(3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarise(tracker.records, n, expected)
    summary.update(guarantee=guarantee, scenario="crash" if crash else "steady",
                   seconds=round(seconds, 1), flows_per_s=round(n / seconds, 1))
    summary.pop("mismatch_examples", None)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--flows", type=int, default=20_000)
    parser.add_argument("--guarantees", default="at_least_once,exactly_once")
    args = parser.parse_args()
    frame = load_replay_frame(improved_csvs(), limit=args.flows)
    from stream_ids.scorer import Scorer

    expected = Scorer.load().score_frame(frame)
    results = []
    for guarantee in args.guarantees.split(","):
        for crash in (False, True):
            result = run(args.bootstrap, frame, guarantee, crash, expected)
            print(json.dumps(result), flush=True)
            results.append(result)
    print("\n| guarantee | scenario | flows | verdicts | lost | duplicated | score mismatches "
          "| flows/s (wall, incl. restarts) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['guarantee']} | {r['scenario']} | {r['flows_in']} | {r['verdicts_out']} | "
              f"{r['lost']} | {r['duplicated']} | {r['score_mismatch_any']} | "
              f"{r['flows_per_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
