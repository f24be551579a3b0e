"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) of a worker, per thread.

    python bench/profile_summary.py bench/out/worker.prof [--top 25]

Prints, for each thread, its share of samples and the functions with the most inclusive
samples (self + callees), so the bound of the worker can be read off without a browser.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", default=None, help="only threads whose name contains this")
    args = parser.parse_args()
    threads: collections.Counter[str] = collections.Counter()
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaf: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        frames = stack.split(";")
        thread = re.sub(r"\s*\(?0x[0-9a-f]+\)?", "", frames[0]).strip()
        if args.thread and args.thread not in thread:
            continue
        total += samples
        threads[thread] += samples
        names = {re.sub(r" \(.*?:\d+\)$", "", frame) for frame in frames[1:]}
        for name in names:
            inclusive[thread][name] += samples
        if len(frames) > 1:
            leaf[thread][re.sub(r" \(.*?:\d+\)$", "", frames[-1])] += samples
    for thread, samples in threads.most_common():
        print(f"\n== {thread}: {samples} samples ({samples / total:.0%})")
        for name, count in inclusive[thread].most_common(args.top):
            own = leaf[thread][name] / samples
            print(f"  {count / samples:6.1%} incl  {own:6.1%} self  {name}")


if __name__ == "__main__":
    main()
