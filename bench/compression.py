"""CPU and size of each compression the worker can use, on what it really produces.

    python bench/compression.py

Two payloads: a record batch of 600 verdicts of real shared flows (scored by the shipped
model, as the worker writes them) built with aiokafka's own batch builder, and one host state
of 1,024 encodings (the largest the host table keeps, ~270 kB) compressed with aiokafka's codec
functions. Prints µs per verdict, bytes per verdict and ms per host state for each codec
(docs/performance.md section 8; the worker's choice is ``STREAM_IDS_COMPRESSION``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def per_call(function: Callable[[], object], seconds: float = 1.0) -> float:
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        function()
        calls += 1
    return (time.perf_counter() - started) / calls


def main() -> None:
    import numpy as np
    import orjson
    from aiokafka import codec
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    from producers.replay import load_replay_frame
    from stream_ids.datasets import improved_csvs
    from stream_ids.scorer import Scorer
    from stream_ids.tables import HostHistory, encode_history

    frame = load_replay_frame(improved_csvs(), limit=1024).reset_index(drop=True)
    scorer = Scorer.load()
    scorer.enable_split()
    scores = scorer.score_frame(frame)
    now = time.time()
    verdicts = [
        orjson.dumps(
            {
                "flow_id": f"r-0-{row}",
                "src_ip": frame["src_ip"][row],
                "dst_ip": frame["dst_ip"][row],
                "dst_port": int(frame["dst_port"][row]),
                "protocol": int(frame["protocol"][row]),
                "timestamp": float(frame["timestamp"][row]),
                "produced_at": now,
                "scored_at": now + 0.05,
                "score": float(scores[row]),
                "is_attack": bool(scores[row] >= scorer.threshold),
                "threshold": scorer.threshold,
                "model_version": scorer.model_version,
                "label": frame["label"][row],
                "window_length": 8,
            }
        )
        for row in range(600)
    ]

    def batch(codec_id: int) -> bytearray:
        builder = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=codec_id,
            is_transactional=False,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 20,
        )
        for offset, value in enumerate(verdicts):
            builder.append(offset, timestamp=None, key=b"192.168.10.5", value=value, headers=[])
        return builder.build()

    encodings = scorer.encode(scorer.transform.transform_many(frame))
    state = encode_history(HostHistory(encodings, np.arange(len(encodings), dtype=np.int64)))
    encoders = {
        "gzip": codec.gzip_encode,
        "snappy": codec.snappy_encode,
        "lz4": codec.lz4_encode,
        "zstd": codec.zstd_encode,
    }
    print(f"{len(verdicts)} verdicts, {len(state):,} B host state ({len(encodings)} encodings)")
    for name, codec_id in CODECS.items():
        seconds = per_call(lambda codec_id=codec_id: batch(codec_id))
        size = len(batch(codec_id))
        line = (
            f"{name:7s} verdicts {seconds / len(verdicts) * 1e6:5.2f} µs and "
            f"{size / len(verdicts):5.1f} B each"
        )
        if name in encoders:
            encode = encoders[name]
            state_seconds = per_call(lambda encode=encode: encode(state))
            line += f"; host state {state_seconds * 1e3:6.2f} ms, {len(encode(state)):,} B"
        print(line, flush=True)


if __name__ == "__main__":
    main()
