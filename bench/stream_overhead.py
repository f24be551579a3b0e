"""Measure one worker's throughput on a backlog: real model, or a no-op model (Faust overhead).

    python bench/stream_overhead.py --bootstrap 127.0.0.1:19092 --flows 56277 [--noop]
        [--host-batch 32] [--batch-size 512]

Produces the shared rows (looped) to fresh topics first, then starts the worker in this process
and reports flows/s between the first and the last verdict (the backlog drains as fast as the
worker can go). ``--noop`` replaces the CNN-LSTM by a model that returns zeros, so what remains
is Kafka + Faust + validation + transform + windows + verdict publishing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class NoopModel:
    def __init__(self, real: object) -> None:
        self.transform = real.transform
        self.window = real.window
        self.n_inputs = real.n_inputs
        self.threshold = real.threshold
        self.model_version = "noop"

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        return np.zeros(len(windows), dtype=np.float32)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--flows", type=int, default=56_277)
    parser.add_argument("--noop", action="store_true")
    parser.add_argument("--host-batch", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    os.environ.update(
        {
            "STREAM_IDS_BOOTSTRAP_SERVERS": args.bootstrap,
            "STREAM_IDS_TOPIC_FLOWS": f"bench-flows-{tag}",
            "STREAM_IDS_TOPIC_VERDICTS": f"bench-verdicts-{tag}",
            "STREAM_IDS_TOPIC_ALERTS": f"bench-alerts-{tag}",
            "STREAM_IDS_TOPIC_STATS": f"bench-stats-{tag}",
            "STREAM_IDS_TOPIC_DEAD_LETTER": f"bench-dlq-{tag}",
            "STREAM_IDS_APP_ID": f"bench-{tag}",
            "STREAM_IDS_METRICS_PORT": "0",
            "STREAM_IDS_BATCH_SIZE": str(args.batch_size),
            "STREAM_IDS_DATA_DIR": f"/tmp/stream-ids-bench-{tag}",  # noqa: S108
        }
    )
    from producers.replay import load_replay_frame, replay
    from stream_ids.agents import build_worker
    from stream_ids.commands.worker import _declare_topics
    from stream_ids.datasets import improved_csvs
    from stream_ids.scorer import Scorer
    from stream_ids.settings import Settings
    from stream_ids.topic_reader import read_topic

    settings = Settings()
    _declare_topics(settings)
    frame = load_replay_frame(improved_csvs())
    loops = max(1, -(-args.flows // len(frame)))
    result = replay([], settings, frame=frame, loop=loops, progress=False,
                    host_batch=args.host_batch, id_prefix="b")
    n = result.delivered
    print(f"produced {n} flows in {result.seconds:.1f} s ({result.rate:,.0f}/s), "
          f"host_batch={args.host_batch}", flush=True)
    real = Scorer.load()
    model = NoopModel(real) if args.noop else real
    parts = build_worker(settings, model)

    from faust.worker import Worker

    worker = Worker(parts.app, loglevel="warning", quiet=True, redirect_stdouts=False)
    stamps: list[float] = []

    def watch() -> None:
        for _key, verdict in read_topic(settings, settings.topic_verdicts, follow=True):
            stamps.append(verdict["scored_at"])
            if len(stamps) >= n:
                break
        first, last = min(stamps), max(stamps)
        print(f"{'noop' if args.noop else 'cnn-lstm'} model, batch {args.batch_size}, "
              f"host_batch {args.host_batch}: {n} verdicts in {last - first:.1f} s = "
              f"{n / (last - first):,.0f} flows/s (first to last verdict)", flush=True)
        parts.app.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(worker.stop()))

    threading.Thread(target=watch, daemon=True).start()
    started = time.time()
    with contextlib.suppress(SystemExit):
        worker.execute_from_commandline()
    print(f"wall {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
