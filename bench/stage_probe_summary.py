"""Summarise a stage probe (bench/stage_probe): how busy the scoring thread was, how long it
waited between chunks, and the event loop's stage totals.

    python bench/stage_probe_summary.py /tmp/probe.json
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import orjson


def main() -> int:
    records = orjson.loads(open(sys.argv[1], "rb").read())  # noqa: SIM115  (read once)
    chunks = sorted((r for r in records if r[0] == "compute"), key=lambda r: r[1])
    if not chunks:
        print("no chunk was scored")
        return 1
    span = chunks[-1][2] - chunks[0][1]
    busy = sum(end - start for _, start, end, _ in chunks)
    flows = sum(size for *_, size in chunks)
    gaps = np.array([b[1] - a[2] for a, b in itertools.pairwise(chunks)] or [0.0])
    print(
        f"scoring thread: {len(chunks)} chunks, {flows} flows in {span:.1f} s, busy {busy:.1f} s "
        f"({100 * busy / span:.0f}%), {1e6 * busy / flows:.1f} µs per flow; waits between "
        f"chunks p50 {1000 * np.median(gaps):.2f} ms, p90 {1000 * np.percentile(gaps, 90):.2f} "
        f"ms, {gaps.sum():.2f} s in all"
    )
    for stage in ("validate", "start_scoring", "publish", "write_state"):
        times = np.array([end - start for name, start, end, _ in records if name == stage])
        if len(times):
            print(
                f"event loop {stage:13s}: {len(times)} calls, {times.sum():.2f} s "
                f"({100 * times.sum() / span:.0f}% of the span), mean {1000 * times.mean():.1f} ms"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
