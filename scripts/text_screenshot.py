"""Render a captured console transcript (text) as a PNG, like a terminal window.

    stream-ids demo > demo.txt 2>&1
    python scripts/text_screenshot.py demo.txt docs/img/demo-summary.png

Used for docs/img/demo-summary.png: the real output of ``stream-ids demo`` from a bare clone.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transcript", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--title", default="$ stream-ids demo")
    parser.add_argument("--columns", type=int, default=100)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw = [args.title, *args.transcript.read_text().rstrip("\n").splitlines()]
    # a terminal of --columns wraps longer lines
    lines = [line[i : i + args.columns] for line in raw for i in range(0, max(len(line), 1),
                                                                      args.columns)]
    width = max(len(line) for line in lines)
    figure = plt.figure(figsize=(0.084 * width + 0.3, 0.176 * len(lines) + 0.3), dpi=110)
    figure.patch.set_facecolor("#1e1e1e")
    figure.text(0.02, 0.98, "\n".join(lines), family="DejaVu Sans Mono", size=10,
                color="#e8e8e8", va="top", ha="left", linespacing=1.25)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, facecolor=figure.get_facecolor())
    print(f"{args.out}: {len(lines)} lines")


if __name__ == "__main__":
    main()
