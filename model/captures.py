"""Flow files of the shared packet captures, for training and calibration.

    python -m model.captures [--out runs/captures]

Runs every capture of ``../shared/data/pcap/benign/`` through the Python ``cicflowmeter``
(cached by sha256, :func:`model.generalization.extract_flows`) and writes its flows under two
halves, alternate captures by name, the same split as the generalization report's calibration:
``OUT/benign-A/<capture>.csv`` and ``OUT/benign-B/<capture>.csv``. Half A can train (``stream-ids
train --benign OUT/benign-A``) or calibrate; half B stays unseen for measuring.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

from model.generalization import DEFAULT_CACHE, DEFAULT_EXTRACTOR_PYTHON, REPO_ROOT, extract_flows
from stream_ids.datasets import shared_data_dir


def write_halves(out: Path, cache: Path = DEFAULT_CACHE) -> dict[str, list[str]]:
    pcaps = sorted((shared_data_dir() / "pcap" / "benign").glob("*.pcap*"), key=lambda p: p.name)
    halves: dict[str, list[str]] = {"benign-A": [], "benign-B": []}
    for index, pcap in enumerate(pcaps):
        extraction = extract_flows(pcap, cache, DEFAULT_EXTRACTOR_PYTHON)
        if extraction.csv.stat().st_size == 0:
            continue  # no flow in this capture
        half = "benign-A" if index % 2 == 0 else "benign-B"
        folder = out / half
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(extraction.csv, folder / f"{pcap.name}.csv")
        halves[half].append(pcap.name)
    return halves


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.captures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "captures")
    args = parser.parse_args(argv)
    for half, names in write_halves(args.out).items():
        print(f"{args.out / half}: {len(names)} captures ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
