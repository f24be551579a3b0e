"""Full-collection (gen 2) GC pauses while parsing host micro-batches next to a loaded model.

    python bench/gc_pauses.py nofreeze|freeze

Loads the shipped model (as a worker does), parses 3 x 100,000 flows of pre-rendered
``replay --loop`` messages with the worker's validator and reports the gen-2 collections and
their pauses, with or without ``gc.freeze()`` after loading (docs/performance.md, section 5).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    import run as bench

    from producers.replay import load_replay_frame
    from stream_ids.datasets import improved_csvs
    from stream_ids.scorer import Scorer
    from stream_ids.wire import parse_message

    mode = sys.argv[1] if len(sys.argv) > 1 else "nofreeze"
    scorer = Scorer.load()
    scorer.enable_split()
    rendered = bench.Rendered(load_replay_frame(improved_csvs()), 100_000, 32, 4096, "g")
    if mode == "freeze":
        gc.freeze()
    pauses: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)
    begin = time.perf_counter()
    keep: list[Any] = []
    for _ in range(3):
        for key, value in zip(rendered.keys, rendered.values, strict=True):
            stamped = value.replace(bench.PLACEHOLDER_BYTES, b"1795800000.5")
            keep.append(parse_message(stamped, key, check=False))
            if len(keep) > 200:
                keep.clear()
    elapsed = time.perf_counter() - begin
    print(
        f"{mode}: {len(pauses)} gen-2 collections, max pause {max(pauses, default=0):.3f} s, "
        f"total {sum(pauses):.2f} s of {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
