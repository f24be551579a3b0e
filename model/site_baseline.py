"""Does a site's own benign baseline beat a calibrated threshold alone? (issue #16, step 3)

    python -m model.site_baseline

Per site (a source with benign flows the shipped model was not trained on, split in halves as
the generalization report splits them), two ways to tune the shipped CNN-LSTM to the site, both
fitted on half A's benign flows only:

* **threshold alone** (what ``stream-ids calibrate`` ships): the threshold for 0.1% alerts on
  A, capped so that 95% of the embedded sample's attack flows still alert;
* **threshold + local autoencoder**: the same threshold, and an alert also needs the flow to be
  unusual *for this site*: its reconstruction error by an autoencoder fitted on A (the
  model's own transform of each flow as input, the baselines' architecture) at or above the
  99.9th percentile of A's errors. A flow the site does every day cannot alert.

Measured on half B's benign flows (false alarms), on the site's own attack flows where it has
them and on the embedded sample's CICIDS2017 attacks (recall: what the baseline must not
suppress). Writes ``docs/site-baseline.md`` and ``docs/site-baseline.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from model.baselines import _autoencoder
from model.generalization import (
    REPO_ROOT,
    _git_commit,
    load_sources,
    outside_training,
    training_files,
)
from model.robustness import alternate_halves, report_preamble
from stream_ids.calibration import fit_threshold
from stream_ids.datasets import embedded_sample, shared_data_dir
from stream_ids.loader import load_flows
from stream_ids.offline import score_frame
from stream_ids.scorer import Scorer

console = Console(stderr=True)
COMMAND = "python -m model.site_baseline"
TARGET = 0.001
ERROR_QUANTILE = 0.999
# Sources with benign flows, and how to halve them; a model's own training files are left out
# (as the generalization report does), and a source it trained on entirely is not a site.
SITES: dict[str, str | None] = {
    "pcap/benign": "source_file",  # by capture file
    "cse-cic-ids2018-improved": None,  # by row
    "cic-ddos2019": None,
}


@dataclass
class Half:
    frame: pd.DataFrame
    scores: np.ndarray  # CNN-LSTM, NaN where the worker dead-letters
    inputs: np.ndarray  # the model's transform of each flow


def halves(frame: pd.DataFrame, by: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The generalization report's halves: alternate rows, or alternate values of ``by``."""
    first, second = alternate_halves(frame, by)
    return frame.loc[first].reset_index(drop=True), frame.loc[second].reset_index(drop=True)


def scored(scorer: Scorer, frame: pd.DataFrame) -> Half:
    result = score_frame(scorer, frame)
    return Half(frame, result.score, scorer.transform.transform_many(frame))


def fit_site_autoencoder(inputs: np.ndarray, seed: int) -> Any:
    """The baselines' autoencoder fitted on one site's benign flows (10% held for early stop)."""
    import keras

    order = np.random.default_rng(seed).permutation(len(inputs))
    cut = max(1, int(0.9 * len(inputs)))
    train, validation = inputs[order[:cut]], inputs[order[cut:]]
    model = _autoencoder(inputs.shape[1], seed)
    model.fit(train, train, validation_data=(validation, validation), epochs=200,
              batch_size=64, verbose=0,
              callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=10,
                                                       restore_best_weights=True)])
    return model


def reconstruction_error(model: Any, inputs: np.ndarray) -> np.ndarray:
    if len(inputs) == 0:
        return np.zeros(0)
    rebuilt = np.asarray(model.predict(inputs, batch_size=4096, verbose=0))
    return np.mean((rebuilt - inputs) ** 2, axis=1)


def rate(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if len(mask) else None


def measure_site(scorer: Scorer, name: str, frame: pd.DataFrame, by: str | None,
                 reference: Half, seed: int) -> dict[str, Any]:
    first, second = halves(frame, by)
    a, b = scored(scorer, first), scored(scorer, second)
    benign_a = (a.frame["is_attack"] == 0).to_numpy() & np.isfinite(a.scores)
    benign_b = (b.frame["is_attack"] == 0).to_numpy() & np.isfinite(b.scores)
    attacks = (reference.frame["is_attack"] == 1).to_numpy() & np.isfinite(reference.scores)
    fitted = fit_threshold(a.scores[benign_a], TARGET, reference.scores[attacks])
    threshold = fitted["threshold"]
    autoencoder = fit_site_autoencoder(a.inputs[benign_a], seed)
    error_floor = float(np.quantile(reconstruction_error(autoencoder, a.inputs[benign_a]),
                                    ERROR_QUANTILE))

    def verdicts(half: Half, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alone = half.scores[rows] >= threshold
        unusual = reconstruction_error(autoencoder, half.inputs[rows]) >= error_floor
        return alone, alone & unusual

    result: dict[str, Any] = {
        "site": name, "benign_fit": int(benign_a.sum()), "benign_tested": int(benign_b.sum()),
        "threshold": threshold, "capped": fitted["capped"], "error_floor": error_floor,
        "model_threshold": scorer.model_threshold,
    }
    model_alone = b.scores[benign_b] >= scorer.model_threshold
    alone, combined = verdicts(b, benign_b)
    result["false_alarms"] = {"model": rate(model_alone), "threshold": rate(alone),
                              "threshold+autoencoder": rate(combined)}
    alone, combined = verdicts(reference, attacks)
    result["reference_recall"] = {"threshold": rate(alone), "threshold+autoencoder": rate(combined)}
    site_attacks = (frame["is_attack"] == 1).to_numpy()
    if site_attacks.any():
        everything = scored(scorer, frame.loc[site_attacks].reset_index(drop=True))
        rows = np.isfinite(everything.scores)
        alone, combined = verdicts(everything, rows)
        result["site_recall"] = {"model": rate(everything.scores[rows] >= scorer.model_threshold),
                                 "threshold": rate(alone), "threshold+autoencoder": rate(combined)}
    return result


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def render(report: dict[str, Any]) -> str:
    stamp, lines = report_preamble(
        "A site's own benign baseline against a calibrated threshold alone", COMMAND, __doc__,
        report,
    )
    lines += [
        "| site | fit / tested benign flows | threshold | false alarms: model's own 0.5 | "
        "threshold alone | threshold + autoencoder | site's attacks: recall 0.5 / alone / "
        "+ autoencoder | CICIDS2017 attacks: recall alone / + autoencoder |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["sites"]:
        site = row.get("site_recall")
        site_cell = (" / ".join(_percent(site[k]) for k in ("model", "threshold",
                                                             "threshold+autoencoder"))
                     if site else "n/a")
        lines.append(
            f"| {row['site']} | {row['benign_fit']:,} / {row['benign_tested']:,} | "
            f"{row['threshold']:.4g}{' (capped)' if row['capped'] else ''} | "
            + " | ".join(_percent(row["false_alarms"][k])
                         for k in ("model", "threshold", "threshold+autoencoder"))
            + f" | {site_cell} | "
            + " / ".join(_percent(row["reference_recall"][k])
                         for k in ("threshold", "threshold+autoencoder"))
            + " |"
        )
    if report.get("in_training"):
        lines += ["", "Not sites for this model (its training data): "
                  + ", ".join(report["in_training"]) + "."]
    lines += ["", f"_{stamp}._", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "site-baseline.md")
    args = parser.parse_args(argv)
    started = time.time()
    from stream_ids.quiet import expected_tracing

    scorer = Scorer.load(args.model, calibrated=False)
    shared = shared_data_dir()
    sources = load_sources(shared)
    trained_on = training_files(scorer.manifest)
    reference = scored(scorer, load_flows([embedded_sample()]))
    rows, in_training = [], []
    for name, by in SITES.items():
        if name not in sources:
            continue
        frame = outside_training(sources[name], shared, trained_on)
        if not (frame["is_attack"] == 0).any():
            in_training.append(name)
            continue
        console.print(f"site {name}", highlight=False)
        with expected_tracing():  # many small predictions of new shapes
            rows.append(measure_site(scorer, name, frame, by, reference, args.seed))
    report = {"command": COMMAND, "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "git": _git_commit(), "seconds": time.time() - started,
              "model_version": scorer.model_version, "sites": rows,
              "in_training": in_training}
    args.out.write_text(render(report))
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.out} in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
