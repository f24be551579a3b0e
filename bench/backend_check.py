"""Score the shipped model's `.keras` file under another Keras backend and compare.

Two steps, so that the device machine (no TensorFlow there) needs only Keras and NumPy:

    # here, TensorFlow backend: windows of real flows and their reference scores
    python bench/backend_check.py prepare --out .devcarry/windows.npz [--flows 20000]
    # anywhere, any backend (KERAS_BACKEND=jax|torch|tensorflow):
    python bench/backend_check.py check --windows .devcarry/windows.npz \
        --model model/shipped/model.keras --json result.json

`check` loads the model in safe mode, scores the same windows, reports the largest absolute
difference from the TensorFlow reference, whether the backend sees a GPU, and predict
throughput (samples/s) at batch 1, 64, 512 and 4096.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def prepare(out: Path, flows: int) -> None:
    from stream_ids.datasets import improved_csvs
    from stream_ids.loader import load_flows
    from stream_ids.scorer import Scorer
    from stream_ids.sequences import make_windows

    scorer = Scorer.load()
    frame = load_flows(improved_csvs())
    frame = frame.sample(n=min(flows, len(frame)), random_state=7).reset_index(drop=True)
    transformed = scorer.transform.transform_many(frame)
    windows, _ = make_windows(transformed, frame["src_ip"], frame["timestamp"], scorer.window)
    reference = scorer.score_windows(windows)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, windows=windows.astype(np.float32), reference=reference)
    print(f"wrote {out}: windows {windows.shape}, reference scores {reference.shape}")


def _sees_gpu(backend: str) -> str:
    if backend == "jax":
        import jax

        return ",".join(str(device) for device in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return ",".join(device.name for device in tf.config.list_logical_devices()) or "cpu"


def check(windows_path: Path, model_path: Path, json_path: Path | None) -> None:
    import keras

    backend = keras.backend.backend()
    data = np.load(windows_path)
    windows, reference = data["windows"], data["reference"]
    model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    scores = np.concatenate(
        [np.asarray(model.predict_on_batch(windows[i : i + 4096])).reshape(-1)
         for i in range(0, len(windows), 4096)]
    )
    difference = float(np.max(np.abs(scores - reference)))
    throughput = {}
    for batch in (1, 64, 512, 4096):
        chunk = windows[:batch]
        for _ in range(3):  # warm-up: compile / autotune for this shape
            model.predict_on_batch(chunk)
        repeats = max(3, min(200, 20000 // batch))
        started = time.perf_counter()
        for _ in range(repeats):
            np.asarray(model.predict_on_batch(chunk))
        elapsed = time.perf_counter() - started
        throughput[str(batch)] = round(batch * repeats / elapsed, 1)
    result = {
        "backend": backend,
        "keras": keras.__version__,
        "device": _sees_gpu(backend),
        "windows": list(windows.shape),
        "max_abs_difference_from_tensorflow_cpu": difference,
        "same_verdicts_at_0.5": int(np.sum((scores >= 0.5) == (reference >= 0.5))),
        "predict_samples_per_s": throughput,
    }
    print(json.dumps(result, indent=2))
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--flows", type=int, default=20000)
    c = sub.add_parser("check")
    c.add_argument("--windows", type=Path, required=True)
    c.add_argument("--model", type=Path, default=Path("model/shipped/model.keras"))
    c.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if arguments.step == "prepare":
        prepare(arguments.out, arguments.flows)
    else:
        check(arguments.windows, arguments.model, arguments.json)


if __name__ == "__main__":
    main()
