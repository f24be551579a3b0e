"""Build the small CICIDS2017 sample shipped inside the package (stream_ids/resources/sample/).

    python scripts/make_sample.py [--source ../shared/data/cicids2017-improved] [--seed 2017]

From the per-label files of the corrected CICIDS2017 (Engelen et al.; 91 columns), it keeps:

- BENIGN: a seeded random sample of ``--benign`` rows (benign hosts are sparse anyway);
- every attack label: one contiguous run of up to ``--per-label`` rows in time order, starting
  at a seeded random position, so an attacking host's consecutive flows (the model's window)
  stay together; labels with fewer rows are kept whole.

All 91 columns and the original cell text are kept (the loader reads the file as the
``cicids2017-improved`` layout), rows are sorted by ``Timestamp`` (stable), and the gzip stream
carries no name or time, so the same source and seed give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "cicids2017-improved"
DEFAULT_OUT = ROOT / "stream_ids" / "resources" / "sample" / "cicids2017-sample.csv.gz"


def _times(frame: pd.DataFrame) -> np.ndarray:
    """``Timestamp`` cells (``2017-07-03 11:57:41.826651``, fraction optional) as int64 ns."""
    return pd.to_datetime(frame["Timestamp"], format="mixed").to_numpy().astype("int64")


def build(source: Path, seed: int, per_label: int, benign: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for path in sorted(source.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="latin-1")
        frame = frame.iloc[np.argsort(_times(frame), kind="stable")]
        labels = set(frame["Label"])
        if labels == {"BENIGN"}:
            if len(frame) > benign:
                keep = np.sort(rng.choice(len(frame), size=benign, replace=False))
                frame = frame.iloc[keep]
        elif len(frame) > per_label:
            start = int(rng.integers(0, len(frame) - per_label + 1))
            frame = frame.iloc[start : start + per_label]
        parts.append(frame)
    sample = pd.concat(parts, ignore_index=True)
    order = np.argsort(_times(sample), kind="stable")
    return sample.iloc[order].reset_index(drop=True)


def write(sample: pd.DataFrame, out: Path) -> bytes:
    text = sample.to_csv(index=False, lineterminator="\n").encode("latin-1")
    buffer = io.BytesIO()
    # filename="" and mtime=0: no name or time in the gzip header, so the bytes are reproducible
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(text)
    data = buffer.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--per-label", type=int, default=400,
                        help="rows of each attack label (contiguous in time)")
    parser.add_argument("--benign", type=int, default=1500, help="random BENIGN rows")
    args = parser.parse_args()
    sample = build(args.source, args.seed, args.per_label, args.benign)
    data = write(sample, args.out)
    print(f"{args.out}: {len(sample):,} flows, {len(data):,} bytes, "
          f"sha256 {hashlib.sha256(data).hexdigest()}")
    print(sample["Label"].value_counts().to_string())


if __name__ == "__main__":
    main()
