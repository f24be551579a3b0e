"""What the scoring thread's steps cost alone and next to a busy Python thread (the GIL).

    python bench/gil_contention.py [--flows 40960] [--chunk 2048] [--switch-interval 0.005]
        [--windows loop|gather]

The worker runs transform, window building and the model in an executor thread while the
event loop parses and publishes in Python. A thread that releases the GIL (numpy on a large
array, every TensorFlow call) must wait for the busy thread to hand it back, up to the switch
interval (5 ms) each time. This script runs the worker's steps over real, time-ordered shared
rows in chunks, carrying host state as the worker does, once alone and once beside a thread that
only runs Python, and prints microseconds per flow for each step (docs/performance.md,
section 8). ``--windows loop`` times the per-flow window loop that ``build_batch_windows``
replaced.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def loop_windows(encoded, keys, histories, window):  # type: ignore[no-untyped-def]
    """The former per-flow loop of build_batch_windows (before 51d5b8d), for comparison."""
    import numpy as np

    windows = np.zeros((len(encoded), window, encoded.shape[1]), dtype=np.float32)
    groups: dict[bytes, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    for key, indices in groups.items():
        rows = encoded[indices]
        context = histories.get(key, rows[:0])
        sequence = np.concatenate([context, rows])
        for position, index in enumerate(indices):
            end = len(context) + position + 1
            part = sequence[max(0, end - window) : end]
            windows[index, window - len(part) :] = part
        histories[key] = sequence[-(window - 1) :]
    return windows


def run(args: argparse.Namespace, busy: bool) -> dict[str, float]:
    import numpy as np

    from producers.replay import load_replay_frame
    from stream_ids.datasets import improved_csvs
    from stream_ids.schema import FEATURE_NAMES
    from stream_ids.scorer import Scorer
    from stream_ids.tables import build_batch_windows

    frame = load_replay_frame(improved_csvs()).iloc[: args.flows]
    matrix = frame[list(FEATURE_NAMES)].to_numpy(np.float64)
    protocol = frame["protocol"].to_numpy(np.float64)
    keys = [str(host).encode() for host in frame["src_ip"]]
    scorer = Scorer.load()
    scorer.enable_split()
    scorer.warm_up()
    stop = threading.Event()

    def spin() -> None:  # an event loop that never waits: pure Python, holds the GIL
        total = 0
        while not stop.is_set():
            for value in range(1000):
                total += value

    if busy:
        threading.Thread(target=spin, daemon=True).start()
    spent = dict.fromkeys(("transform", "encode", "windows", "head"), 0.0)
    histories: dict = {}
    started = time.perf_counter()
    for start in range(0, len(frame), args.chunk):
        rows = slice(start, start + args.chunk)
        clock = time.perf_counter()
        transformed = scorer.transform.transform_arrays(matrix[rows], protocol[rows])
        spent["transform"] += time.perf_counter() - clock
        clock = time.perf_counter()
        encoded = scorer.encode(transformed)
        spent["encode"] += time.perf_counter() - clock
        clock = time.perf_counter()
        if args.windows == "loop":
            windows = loop_windows(encoded, keys[rows], histories, scorer.window)
            lengths = np.full(len(windows), scorer.window, dtype=np.int32)
        else:
            batch = build_batch_windows(encoded, keys[rows], histories, scorer.window)
            histories.update(batch.updated)
            windows, lengths = batch.windows, batch.lengths
        spent["windows"] += time.perf_counter() - clock
        clock = time.perf_counter()
        scorer.score_encoded(windows, lengths)
        spent["head"] += time.perf_counter() - clock
    total = time.perf_counter() - started
    stop.set()
    out = {name: seconds / len(frame) * 1e6 for name, seconds in spent.items()}
    out["total"] = total / len(frame) * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=40_960)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--switch-interval", type=float, default=0.005)
    parser.add_argument("--windows", choices=["gather", "loop"], default="gather")
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)
    for busy in (False, True):
        result = run(args, busy)
        label = "beside a busy Python thread" if busy else "alone"
        steps = ", ".join(f"{name} {value:.1f}" for name, value in result.items())
        print(f"{label:28s} µs per flow: {steps}", flush=True)


if __name__ == "__main__":
    main()
