"""Generalization report: how a model does on flows it was not trained on.

``python -m model.generalization --model model/shipped [--compare DIR ...]``

Scores every model given (and a random forest fitted in the run on the first model's training
rows) on every source of the shared data folder that is not in that model's training data, and
writes ``docs/generalization.md``, ``docs/generalization.json`` and two PNGs
(``docs/img/generalization.png``, ``docs/img/generalization-drift.png``).

Sources (:func:`load_sources`): the CSV folders under ``cicids2017-original/`` and
``other-datasets/``, the CIC-DDoS2019 captures under ``pcap/`` and the benign captures under
``pcap/benign/``; the captures go through the Python ``cicflowmeter`` package
(:func:`extract_flows`, cached under ``runs/generalization/flows/`` by the capture's sha256).
Every frame carries a ``source_file`` column (its path under the shared folder) so that windows
never cross files and rows of a model's training files can be left out per model.

Per source (:func:`source_metrics`): false-alarm rate on its benign flows and recall (overall
and per attack family) at the model's own threshold, recall at a false-alarm rate of 1%
(threshold-free, from the ROC curve), ROC AUC, and the alert rate on unlabelled flows.
Per feature (:func:`psi`): the population stability index of each source against the training
rows, in the loader's canonical units.

By the worker's rules (:func:`worker_pass`, :func:`stream_ids.offline.score_frame` per file):
the flows the worker would dead-letter, per source and reason (:func:`dead_letter_summary`), and
per-site calibration measured on a held-out half (:func:`split_halves`,
:func:`calibrate_on_halves`): the threshold :func:`stream_ids.calibration.fit_threshold` fits on
one half's benign flows, with the attack floor of ``stream-ids calibrate``, is applied to the
other half. :func:`issue_targets` says which targets of issue #16 are met.

The functions are importable by a training pipeline; nothing here writes a model or a pickle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import shlex
import subprocess  # nosec B404 - runs the cicflowmeter extractor, fixed argv, no shell
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress

from model import false_alarms
from stream_ids import schema
from stream_ids.artifacts import sha256_file
from stream_ids.errors import ConfigurationError, SchemaError, StreamIdsError
from stream_ids.loader import _read_header, detect_layout, expand_flow_paths, load_flows

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO_ROOT / "runs" / "generalization" / "flows"
CAPTURES_DIR = "runs/captures"  # model.captures writes the benign captures' halves here
DEFAULT_EXTRACTOR_PYTHON = REPO_ROOT / ".venv-cicflowmeter" / "bin" / "python"
EXTRACTOR_RUNNER = REPO_ROOT / "tests" / "integration" / "cicflowmeter_runner.py"
MAX_FALSE_ALARM = 0.01
PSI_BINS = 10
PSI_EPSILON = 1e-4
EXTRACT_TIMEOUT_S = 900

console = Console(stderr=True)

# Ground truth the files do not carry, from the shared data README: the darknet file's labels are
# traffic classes of ordinary user traffic, and the pcap/benign captures are ordinary app traffic.
ALL_BENIGN_SOURCES = ("cic-darknet2020", "pcap/benign")

SOURCE_DESCRIPTIONS: dict[str, str] = {
    "cicids2017-improved": "corrected CICIDS2017 (Engelen et al.), the shipped model's training "
    "data: only its test split is scored",
    "cicids2017-original": "original CICIDS2017 TrafficLabelling CSVs (buggy CICFlowMeter); the "
    "Friday files are training data of the shipped model",
    "cse-cic-ids2018-improved": "CSE-CIC-IDS2018 re-extracted by the fixed CICFlowMeter (same "
    "extractor family as the training data), other network (AWS), 9 days",
    "cse-cic-ids2018-original": "CSE-CIC-IDS2018 as published (CICFlowMeter-V3 short names), no "
    "IPs and no timestamps: every flow is scored alone (window of 1)",
    "cic-ddos2019": "CIC-DDoS2019 DrDoS_DNS sample, CICFlowMeter-V3",
    "cic-darknet2020": "CIC-Darknet2020 (VPN/Tor captures), CICFlowMeter-V4: ordinary user "
    "traffic, all benign",
    "pcap/cic-ddos2019": "two CIC-DDoS2019 attack captures (SYN flood, web DDoS) through the "
    "Python cicflowmeter: unlabelled, mostly attack traffic",
    "pcap/benign": "24 captures of ordinary app traffic from other networks (nDPI/nfstream test "
    "suites) through the Python cicflowmeter: all benign",
}


# -- attack families -----------------------------------------------------------------------------
# Labels of the same attack differ between datasets ("DoS Hulk", "DoS attacks-Hulk"); ordered
# rules (first match wins) give one family name so recall can be compared across sources.
_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    (r"infil.*(port ?scan|nmap)", "Infiltration - Portscan"),
    (r"infil", "Infiltration"),
    (r"hulk", "DoS Hulk"),
    (r"goldeneye", "DoS GoldenEye"),
    (r"slowloris", "DoS Slowloris"),
    (r"slowhttp", "DoS Slowhttptest"),
    (r"hoic", "DDoS HOIC"),
    (r"loic.?udp", "DDoS LOIC-UDP"),
    (r"loic", "DDoS LOIC-HTTP"),
    (r"drdos.?dns", "DrDoS DNS"),
    (r"port ?scan", "Portscan"),
    (r"\bbot", "Botnet"),
    (r"ftp", "FTP-Patator"),
    (r"ssh", "SSH-Patator"),
    (r"brute", "Web Attack - Brute Force"),
    (r"xss", "Web Attack - XSS"),
    (r"sql", "Web Attack - SQL Injection"),
)


def attack_family(label: Any) -> str:
    """One family name for an attack label of any dataset (the label itself if no rule fits)."""
    text = "" if label is None or (isinstance(label, float) and math.isnan(label)) else str(label)
    lowered = text.strip().lower()
    for pattern, family in _FAMILY_RULES:
        if re.search(pattern, lowered):
            return family
    return text.strip() or "unknown"


# -- metrics ---------------------------------------------------------------------------------------
def recall_at_false_alarm(
    y_true: Any, scores: Any, max_false_alarm: float = MAX_FALSE_ALARM
) -> tuple[float | None, float | None]:
    """(recall, threshold) at the highest ROC point whose false-alarm rate is <= the bound.

    Threshold-free: the threshold is read off the ROC curve of these very flows, so the number
    says how well the scores *rank* attacks above benign flows, not how the model's own threshold
    does. ``(None, None)`` unless both classes are present. An alert is ``score >= threshold``.
    """
    truth = np.asarray(y_true).astype(bool).ravel()
    score = np.asarray(scores, dtype=np.float64).ravel()
    if truth.all() or not truth.any():
        return None, None
    from sklearn.metrics import roc_curve

    false_alarm, recall, thresholds = roc_curve(truth, score, drop_intermediate=False)
    allowed = np.flatnonzero(false_alarm <= max_false_alarm + 1e-12)
    best = allowed[np.argmax(recall[allowed])]
    return float(recall[best]), float(thresholds[best])


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def source_metrics(
    scores: Any,
    frame: pd.DataFrame,
    threshold: float,
    max_false_alarm: float = MAX_FALSE_ALARM,
) -> dict[str, Any]:
    """Metrics of one model's ``scores`` on one source's canonical ``frame`` (same row order).

    ``is_attack``: 1 attack, 0 benign, -1 unlabelled. Rates with an empty denominator are
    ``None``. Keys: flows, benign, attacks, unlabelled, threshold, false_alarms,
    false_alarm_rate, detected, recall, accuracy (labelled flows), unlabelled_alerts,
    alert_rate_unlabelled, alert_rate, roc_auc, recall_at_far, threshold_at_far,
    max_false_alarm, families (per attack family: flows, detected, recall, recall_at_far).
    """
    score = np.asarray(scores, dtype=np.float64).ravel()
    if len(score) != len(frame):
        raise ValueError(f"{len(score)} scores for {len(frame)} flows")
    truth = frame["is_attack"].to_numpy(dtype=np.int64)
    alerts = score >= threshold
    benign, attack, unlabelled = truth == 0, truth == 1, truth < 0
    false_alarms = int(np.sum(alerts & benign))
    detected = int(np.sum(alerts & attack))
    unlabelled_alerts = int(np.sum(alerts & unlabelled))
    labelled = ~unlabelled
    recall_far, threshold_far = recall_at_false_alarm(
        truth[labelled], score[labelled], max_false_alarm
    )
    roc_auc = None
    if benign.any() and attack.any():
        from sklearn.metrics import roc_auc_score

        roc_auc = float(roc_auc_score(truth[labelled], score[labelled]))
    families: dict[str, dict[str, Any]] = {}
    if attack.any():
        names = np.array([attack_family(label) for label in frame["label"].to_numpy()[attack]])
        attack_scores = score[attack]
        for name in sorted(set(names)):
            rows = attack_scores[names == name]
            hits = int(np.sum(rows >= threshold))
            families[str(name)] = {
                "flows": len(rows),
                "detected": hits,
                "recall": hits / len(rows),
                "recall_at_far": (
                    float(np.mean(rows >= threshold_far)) if threshold_far is not None else None
                ),
            }
    return {
        "flows": len(score),
        "benign": int(benign.sum()),
        "attacks": int(attack.sum()),
        "unlabelled": int(unlabelled.sum()),
        "threshold": float(threshold),
        "false_alarms": false_alarms,
        "false_alarm_rate": _rate(false_alarms, int(benign.sum())),
        "detected": detected,
        "recall": _rate(detected, int(attack.sum())),
        "accuracy": _rate(
            detected + int(benign.sum()) - false_alarms, int(benign.sum() + attack.sum())
        ),
        "unlabelled_alerts": unlabelled_alerts,
        "alert_rate_unlabelled": _rate(unlabelled_alerts, int(unlabelled.sum())),
        "alert_rate": _rate(int(alerts.sum()), len(score)),
        "roc_auc": roc_auc,
        "recall_at_far": recall_far,
        "threshold_at_far": threshold_far,
        "max_false_alarm": max_false_alarm,
        "families": families,
    }


# -- drift -----------------------------------------------------------------------------------------
def psi(
    reference: Any, sample: Any, bins: int = PSI_BINS, epsilon: float = PSI_EPSILON
) -> float | None:
    """Population stability index of ``sample`` against ``reference`` (one feature).

    Bins: the ``bins``-quantiles of the reference's finite values (repeated edges merged, as a
    point mass such as "0" holds many quantiles), each edge value a bin of its own besides the
    intervals between edges, so a feature that is constant in the reference still shows a
    sample that is not; +/-Infinity fall in the outer bins, NaN gets a bin of its own. Each
    bin's share is floored at ``epsilon`` so an empty bin stays finite.
    PSI = sum((q - p) * ln(q / p)), p the reference's and q the sample's shares. ``None`` when
    either side is empty. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large shift.
    """
    ref = np.asarray(reference, dtype=np.float64).ravel()
    new = np.asarray(sample, dtype=np.float64).ravel()
    if len(ref) == 0 or len(new) == 0:
        return None
    finite = ref[np.isfinite(ref)]
    edges = (
        np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1))[1:-1])
        if len(finite)
        else np.zeros(0)
    )

    def shares(values: np.ndarray) -> np.ndarray:
        # Below edge k: 2k; equal to edge k: 2k + 1; NaN: the last bin.
        index = np.searchsorted(edges, values, side="left") + np.searchsorted(
            edges, values, side="right"
        )
        index[np.isnan(values)] = 2 * len(edges) + 1
        counts = np.bincount(index, minlength=2 * len(edges) + 2).astype(np.float64)
        return np.maximum(counts / len(values), epsilon)

    p, q = shares(ref), shares(new)
    return float(np.sum((q - p) * np.log(q / p)))


def drift_table(
    reference: pd.DataFrame,
    sources: Mapping[str, pd.DataFrame],
    features: Sequence[str] = schema.FEATURE_NAMES,
) -> pd.DataFrame:
    """PSI per feature (rows) and source (columns) against ``reference``'s rows."""
    table = {
        name: [
            psi(reference[feature].to_numpy(np.float64), frame[feature].to_numpy(np.float64))
            for feature in features
        ]
        for name, frame in sources.items()
        if len(frame)
    }
    return pd.DataFrame(table, index=list(features), dtype=np.float64)


# -- flow extraction from captures -----------------------------------------------------------------
def _is_pcapng(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\n\r\r\n"


def run_extractor(extractor_python: Path, pcap: Path, output: Path) -> subprocess.CompletedProcess:
    """The Python ``cicflowmeter`` (its own venv's python) on ``pcap``, CSV to ``output``."""
    return subprocess.run(  # noqa: S603 - fixed argv: our venv's python, our runner, two paths
        [str(extractor_python), str(EXTRACTOR_RUNNER), str(pcap), str(output)],
        capture_output=True,
        text=True,
        timeout=EXTRACT_TIMEOUT_S,
        check=False,
    )


def _pcapng_to_pcap(extractor_python: Path, pcapng: Path, output: Path) -> None:
    """Rewrite a pcapng capture as classic pcap with scapy (in the extractor's venv)."""
    script = (
        "import sys; from scapy.all import rdpcap, wrpcap; wrpcap(sys.argv[2], rdpcap(sys.argv[1]))"
    )
    subprocess.run(  # noqa: S603 - fixed argv
        [str(extractor_python), "-c", script, str(pcapng), str(output)],
        capture_output=True,
        timeout=EXTRACT_TIMEOUT_S,
        check=True,
    )


@dataclass
class Extraction:
    """Where a capture's flows are, and what producing them cost (measured on the first run)."""

    pcap: Path
    csv: Path
    sha256: str
    seconds: float
    cached: bool
    converted_from_pcapng: bool
    note: str = ""


def extract_flows(
    pcap: Path,
    cache_dir: Path = DEFAULT_CACHE,
    extractor_python: Path = DEFAULT_EXTRACTOR_PYTHON,
) -> Extraction:
    """The Python ``cicflowmeter``'s CSV for ``pcap``, cached as ``<sha256>.csv`` in ``cache_dir``.

    A sidecar ``<sha256>.json`` keeps the extraction time so a cached rerun still reports it.
    A pcapng capture the extractor refuses is converted to pcap with scapy and run again.
    Raises :class:`SchemaError` when the extractor is missing or fails.
    """
    digest = sha256_file(pcap)
    cache_dir.mkdir(parents=True, exist_ok=True)
    output = cache_dir / f"{digest}.csv"
    sidecar = cache_dir / f"{digest}.json"
    if output.is_file() and sidecar.is_file():
        meta = json.loads(sidecar.read_text())
        return Extraction(
            pcap,
            output,
            digest,
            float(meta["seconds"]),
            True,
            bool(meta.get("converted")),
            str(meta.get("note", "")),
        )
    if not extractor_python.exists():
        raise SchemaError(
            f"{pcap.name}: cicflowmeter not installed ({extractor_python}); "
            "run `bash .ci/install-cicflowmeter.sh`"
        )
    partial = output.with_suffix(".partial.csv")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    result = run_extractor(extractor_python, pcap, partial)
    converted = False
    if result.returncode != 0 and _is_pcapng(pcap):
        classic = cache_dir / f"{digest}.pcap"
        _pcapng_to_pcap(extractor_python, pcap, classic)
        partial.unlink(missing_ok=True)
        result = run_extractor(extractor_python, classic, partial)
        classic.unlink(missing_ok=True)
        converted = True
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SchemaError(
            f"{pcap.name}: cicflowmeter failed (exit {result.returncode}): "
            f"{result.stderr.strip().splitlines()[-1:] or ''}"
        )
    note = "" if partial.exists() else "the extractor wrote no flow"
    if not partial.exists():
        partial.write_text("")
    partial.replace(output)
    sidecar.write_text(
        json.dumps(
            {"pcap": pcap.name, "seconds": seconds, "converted": converted, "note": note},
            indent=2,
        )
        + "\n"
    )
    return Extraction(pcap, output, digest, seconds, False, converted, note)


def load_extracted(csv_path: Path) -> pd.DataFrame:
    """:func:`load_flows` of a Python-cicflowmeter CSV, its times in the canonical microseconds.

    The package writes durations and inter-arrival times in seconds where Java CICFlowMeter (the
    training data) writes microseconds. The relay scales them; if the loader does not (it did
    not when this was written), they are scaled here, checked against the raw column so a
    loader that does it already is not scaled twice.
    """
    frame = load_flows([csv_path])
    header = _read_header(csv_path)
    if header is None or detect_layout(header) != "python-cicflowmeter" or not len(frame):
        return frame
    raw = pd.read_csv(csv_path, usecols=["flow_duration"])["flow_duration"].to_numpy(np.float64)
    loaded = frame["flow_duration"].to_numpy(np.float64)
    if np.allclose(loaded, raw, rtol=1e-5, atol=0.0):
        for name in schema.TIME_FEATURES:
            frame[name] = frame[name] * 1e6
    return frame


# -- sources ---------------------------------------------------------------------------------------
def _relative(path: Path, shared_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(shared_dir.resolve()))
    except ValueError:
        return str(path)


def _tag(frame: pd.DataFrame, source_file: str) -> pd.DataFrame:
    frame = frame.copy()
    frame["source_file"] = source_file
    return frame


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def csv_source_dirs(shared_dir: Path) -> dict[str, Path]:
    """Name -> folder of every CSV source (training data included; callers filter per model)."""
    dirs = {"cicids2017-improved": shared_dir / "cicids2017-improved"}
    dirs["cicids2017-original"] = shared_dir / "cicids2017-original"
    other = shared_dir / "other-datasets"
    if other.is_dir():
        dirs.update({folder.name: folder for folder in sorted(other.iterdir()) if folder.is_dir()})
    return {name: folder for name, folder in dirs.items() if folder.is_dir()}


def capture_flows(
    pcaps: Iterable[Path],
    shared_dir: Path,
    cache_dir: Path = DEFAULT_CACHE,
    extractor_python: Path = DEFAULT_EXTRACTOR_PYTHON,
    skipped: dict[str, str] | None = None,
    extractions: list[Extraction] | None = None,
) -> pd.DataFrame:
    """Flows of each capture (cached cicflowmeter output), ``source_file`` = the capture's path.

    A capture that fails or yields no flow is recorded in ``skipped`` (path -> reason).
    """
    frames = []
    pcap_list = list(pcaps)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("cicflowmeter", total=len(pcap_list))
        for pcap in pcap_list:
            name = _relative(pcap, shared_dir)
            progress.update(task, description=f"cicflowmeter {pcap.name}")
            try:
                extraction = extract_flows(pcap, cache_dir, extractor_python)
                if extractions is not None:
                    extractions.append(extraction)
                if extraction.csv.stat().st_size == 0:
                    raise SchemaError(extraction.note or "no flow extracted")
                frames.append(_tag(load_extracted(extraction.csv), name))
            except (StreamIdsError, OSError, subprocess.SubprocessError) as error:
                if skipped is not None:
                    skipped[name] = f"not loadable: {error}"
            progress.advance(task)
    if not frames:
        return pd.DataFrame(columns=["source_file", "is_attack", "label"])
    return _concat(frames)


def benign_capture_flows(
    shared_dir: Path,
    cache_dir: Path = DEFAULT_CACHE,
    extractor_python: Path = DEFAULT_EXTRACTOR_PYTHON,
    skipped: dict[str, str] | None = None,
    extractions: list[Extraction] | None = None,
) -> pd.DataFrame:
    """Every capture of ``pcap/benign/`` through cicflowmeter, labelled benign (README truth)."""
    pcaps = sorted((shared_dir / "pcap" / "benign").glob("*.pcap*"))
    frame = capture_flows(pcaps, shared_dir, cache_dir, extractor_python, skipped, extractions)
    return _mark_benign(frame)


def _mark_benign(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["is_attack"] = np.zeros(len(frame), dtype=np.int8)
    frame["label"] = "BENIGN"
    return frame


def skip_reason(error: Exception, path: Path) -> str:
    """ "not scorable: ..." for a file that lacks model features, else "not loadable: ..."."""
    reason = str(error).removeprefix(f"{path}: ")
    kind = "not scorable" if "required feature columns" in reason else "not loadable"
    return f"{kind}: {reason}"


def load_sources(
    shared_dir: Path,
    cache_dir: Path = DEFAULT_CACHE,
    extractor_python: Path = DEFAULT_EXTRACTOR_PYTHON,
    *,
    captures: bool = True,
    skipped: dict[str, str] | None = None,
    extractions: list[Extraction] | None = None,
) -> dict[str, pd.DataFrame]:
    """Name -> canonical frame (with ``source_file``) of every source in the shared folder.

    Includes the CICIDS2017 files (filter them per model with :func:`outside_training`). A file
    that does not load is left out and recorded in ``skipped`` ("not loadable: <reason>").
    ``captures=False`` skips the pcap sources (no extractor needed).
    """
    sources: dict[str, pd.DataFrame] = {}
    for name, folder in csv_source_dirs(shared_dir).items():
        frames = []
        for path in expand_flow_paths([folder]):
            try:
                frames.append(_tag(load_flows([path]), _relative(path, shared_dir)))
            except SchemaError as error:
                if skipped is not None:
                    skipped[_relative(path, shared_dir)] = skip_reason(error, path)
        if frames:
            frame = _concat(frames)
            sources[name] = _mark_benign(frame) if name in ALL_BENIGN_SOURCES else frame
    if captures:
        attack_pcaps = sorted((shared_dir / "pcap").glob("*.pcap*"))
        if attack_pcaps:
            frame = capture_flows(
                attack_pcaps, shared_dir, cache_dir, extractor_python, skipped, extractions
            )
            if len(frame):
                sources["pcap/cic-ddos2019"] = frame
        benign = benign_capture_flows(shared_dir, cache_dir, extractor_python, skipped, extractions)
        if len(benign):
            sources["pcap/benign"] = benign
    return sources


def training_files(
    manifest: Mapping[str, Any],
    root: Path = REPO_ROOT,
    lists: Sequence[str] = ("data", "benign"),
) -> list[Path]:
    """The resolved files of a manifest's ``training.data`` and ``training.benign`` (or only
    the ``lists`` named; relative paths: from ``root``)."""
    training = manifest.get("training", {})
    data = [entry for name in lists for entry in training.get(name, [])]
    paths = [Path(p) if Path(p).is_absolute() else root / p for p in data]
    # A missing file is kept by name (manifests list files), so that its source still counts
    # as "in training" where the training data is not here (e.g. captures not yet extracted).
    return [
        resolved
        for path in paths
        for resolved in (
            [found.resolve() for found in expand_flow_paths([path])]
            if path.exists()
            else [path.resolve()]
        )
    ]


def outside_training(
    frame: pd.DataFrame, shared_dir: Path, train_files: Iterable[Path]
) -> pd.DataFrame:
    """The rows of ``frame`` whose ``source_file`` is not one of ``train_files``.

    A capture's flows trained as ``<capture>.csv`` (``python -m model.captures``) count as the
    capture's own (``pcap/benign/<capture>``).
    """
    files = list(train_files)
    names = {_relative(path, shared_dir) for path in files}
    captures = {path.name.removesuffix(".csv") for path in files if ".pcap" in path.name}
    source = frame["source_file"].astype(str)
    trained_capture = source.str.rsplit("/", n=1).str[-1].isin(captures) & source.str.startswith(
        "pcap/"
    )
    keep = ~(source.isin(names) | trained_capture).to_numpy()
    return frame.loc[keep].reset_index(drop=True)


# -- models ----------------------------------------------------------------------------------------
ScoreFunction = Callable[[pd.DataFrame], np.ndarray]


@dataclass
class Candidate:
    """A model under test: a name, its alert threshold and a function scoring a frame."""

    name: str
    kind: str
    threshold: float
    score: ScoreFunction
    train_files: list[Path]
    detail: str = ""
    test_split: dict[str, Any] | None = None
    # The CICIDS2017 rows of the test split, when the model also trained on other sources (the
    # issue's in-distribution targets are about CICIDS2017).
    test_split_cicids2017: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    # What stream_ids.offline.score_frame takes (``score_frame``, ``threshold``): the worker's
    # rules applied to this model. None: not measured by the worker's rules.
    worker_scorer: Any = None


class PerFlowScorer:
    """A per-flow score function dressed as what :func:`stream_ids.offline.score_frame` uses of
    a :class:`~stream_ids.scorer.Scorer` (``score_frame``, ``threshold``), so a baseline is
    scored by the same dead-letter rules as the worker's model."""

    def __init__(self, score: ScoreFunction, threshold: float) -> None:
        self._score = score
        self.threshold = threshold

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._score(frame), dtype=np.float32)


def score_by_file(score: ScoreFunction, frame: pd.DataFrame) -> np.ndarray:
    """Scores of ``frame`` with windows built within each ``source_file`` (never across)."""
    out = np.empty(len(frame), dtype=np.float64)
    if not len(frame):
        return out
    groups = frame.groupby("source_file", sort=False).indices
    for rows in groups.values():
        out[rows] = score(frame.iloc[rows].reset_index(drop=True))
    return out


def _prepare_training(
    manifest: Mapping[str, Any], train_files: list[Path], window: int
) -> dict[str, Any]:
    from model.train import TrainConfig, prepare

    training = manifest.get("training", {})
    # The rows of the training split: --benign files count as benign and go through the same
    # loader (a different row set would give a different random split, and a "test split"
    # holding training rows). Augmented copies never join the test split, so they are left out.
    benign = set(training_files(manifest, lists=("benign",)))
    config = TrainConfig(
        data=[str(path) for path in train_files if path not in benign],
        benign=[str(path) for path in train_files if path in benign],
        balance_sources=bool(training.get("balance_sources", False)),
        out="",
        window=window,
        split=str(training.get("split", "random")),
        seed=int(training.get("seed", 7)),
        log1p=bool(training.get("log1p", True)),
        protocol_mask_fraction=float(training.get("protocol_mask_fraction", 0.1)),
    )
    return prepare(config, log=lambda message: console.log(message))


def cnn_lstm_candidate(model_dir: Path) -> tuple[Candidate, dict[str, Any] | None]:
    """The model of ``model_dir`` (checked hashes) and its own test split's metrics.

    Returns the candidate and the prepared training rows (``model.train.prepare`` with window
    1: frame, split indices, per-flow inputs), or ``None`` when its training data is not here.
    """
    from stream_ids.scorer import Scorer

    # The model's own threshold: a site calibration beside it is a per-site fix, not the model.
    scorer = Scorer.load(model_dir, calibrated=False)
    manifest = scorer.manifest
    candidate = Candidate(
        name=scorer.model_version,
        kind="cnn-lstm",
        threshold=scorer.threshold,
        score=scorer.score_frame,
        train_files=[],
        detail=f"{model_dir} (window {scorer.window}, its own threshold {scorer.threshold:g}; "
        "a site calibration.json beside it is not applied)",
        worker_scorer=scorer,
    )
    try:
        candidate.train_files = training_files(manifest)
        prepared = _prepare_training(manifest, candidate.train_files, window=1)
    except SchemaError as error:
        console.log(f"[yellow]{model_dir}: training data unavailable ({error})")
        return candidate, None
    from model.train import window_hosts
    from stream_ids.sequences import make_windows

    frame, test = prepared["frame"], prepared["idx"]["test"]
    windows, _ = make_windows(
        scorer.transform.transform_many(frame),
        window_hosts(frame),
        frame["timestamp"],
        scorer.window,
    )
    scores = scorer.score_windows(windows[test])
    test_frame = frame.iloc[test].reset_index(drop=True)
    candidate.test_split = source_metrics(scores, test_frame, scorer.threshold)
    cicids2017 = cicids2017_rows(test_frame, candidate.train_files)
    if cicids2017 is not None and not cicids2017.all():
        candidate.test_split_cicids2017 = source_metrics(
            scores[cicids2017], test_frame.loc[cicids2017], scorer.threshold
        )
    return candidate, prepared


def cicids2017_rows(frame: pd.DataFrame, train_files: Sequence[Path]) -> np.ndarray | None:
    """Which rows of a training frame are CICIDS2017's (its folders are named ``cicids2017-*``);
    None when that cannot be told (several sources loaded without a ``source`` column)."""
    if "source" in frame:
        return frame["source"].astype(str).str.startswith("cicids2017").to_numpy()
    if all(path.parent.name.startswith("cicids2017") for path in train_files):
        return np.ones(len(frame), dtype=bool)
    return None


def random_forest_candidate(
    prepared: Mapping[str, Any],
    train_files: list[Path],
    seed: int,
    trees: int = 100,
    jobs: int = 1,
) -> Candidate:
    """``model/baselines.py``'s random forest, fitted now on the same training split and
    per-flow inputs (window 1, the baselines' transform); never persisted."""
    from sklearn.ensemble import RandomForestClassifier

    started = time.perf_counter()
    inputs = prepared["windows"][:, 0, :]
    labels = prepared["y"].astype(np.int8)
    idx = prepared["idx"]
    forest = RandomForestClassifier(n_estimators=trees, n_jobs=jobs, random_state=seed)
    forest.fit(inputs[idx["train"]], labels[idx["train"]])
    transform = prepared["transform"]

    def score(frame: pd.DataFrame) -> np.ndarray:
        return forest.predict_proba(transform.transform_many(frame))[:, 1]

    candidate = Candidate(
        name="random-forest",
        kind="random-forest",
        threshold=0.5,
        score=score,
        train_files=train_files,
        detail=f"{trees} trees, seed {seed}, per-flow, fitted in this run on the same training "
        f"split ({len(idx['train']):,} flows)",
        seconds={"fit": time.perf_counter() - started},
    )
    candidate.worker_scorer = PerFlowScorer(score, 0.5)
    test = idx["test"]
    candidate.test_split = source_metrics(
        forest.predict_proba(inputs[test])[:, 1],
        prepared["frame"].iloc[test].reset_index(drop=True),
        0.5,
    )
    return candidate


# -- evaluation ------------------------------------------------------------------------------------
def evaluate(
    candidates: Sequence[Candidate],
    sources: Mapping[str, pd.DataFrame],
    shared_dir: Path,
    max_false_alarm: float = MAX_FALSE_ALARM,
) -> dict[str, dict[str, Any]]:
    """source -> model name -> metrics on the source's rows outside that model's training data
    (``{"in_training": True}`` when none are left); per-file metrics under ``"by_file"``."""
    results: dict[str, dict[str, Any]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scoring", total=len(candidates) * len(sources))
        for name, frame in sources.items():
            results[name] = {}
            for candidate in candidates:
                progress.update(task, description=f"scoring {name} with {candidate.kind}")
                rows = outside_training(frame, shared_dir, candidate.train_files)
                if not len(rows):
                    results[name][candidate.name] = {"in_training": True}
                    progress.advance(task)
                    continue
                started = time.perf_counter()
                scores = score_by_file(candidate.score, rows)
                metrics = source_metrics(scores, rows, candidate.threshold, max_false_alarm)
                metrics["seconds"] = time.perf_counter() - started
                if metrics["benign"]:
                    metrics["false_alarm_kinds"] = false_alarms.breakdown(
                        scores, rows, candidate.threshold
                    )
                files = rows["source_file"].to_numpy()
                metrics["by_file"] = {
                    str(file): source_metrics(
                        scores[files == file],
                        rows.loc[files == file].reset_index(drop=True),
                        candidate.threshold,
                        max_false_alarm,
                    )
                    for file in pd.unique(files)
                }
                results[name][candidate.name] = metrics
                progress.advance(task)
    return results


# -- by the worker's rules: dead letters and per-site calibration ------------------------------
CALIBRATION_TARGET = 0.001  # stream_ids.calibration.DEFAULT_TARGET, issue #16's bound after it
OTHER_DATASETS_POOLED = "other-datasets benign (pooled)"


@dataclass
class WorkerScores:
    """One model's scores of one source's rows (outside its training data) by the worker's rules:
    NaN for a flow it dead-letters, whose reason (``out_of_range on idle_mean``) is kept."""

    rows: pd.DataFrame
    score: np.ndarray
    valid: np.ndarray
    reason: list[str | None]


def dead_letter_reason(values: Sequence[float]) -> str:
    """``<reason code> on <feature>`` for a feature row the worker refuses (``row_error``)."""
    from stream_ids.wire import row_error

    error = row_error(tuple(float(v) for v in values))
    feature = error.detail.split("=", 1)[0].removeprefix("features.")
    return f"{error.reason} on {feature}" if feature else error.reason


def worker_scores_of(worker_scorer: Any, rows: pd.DataFrame) -> WorkerScores:
    """:func:`stream_ids.offline.score_frame` of ``rows`` file by file (windows never cross
    files), with each dead letter's reason and feature."""
    from stream_ids.offline import score_frame as offline_score_frame

    score = np.full(len(rows), np.nan, dtype=np.float64)
    valid = np.ones(len(rows), dtype=bool)
    reason: list[str | None] = [None] * len(rows)
    for group in rows.groupby("source_file", sort=False).indices.values():
        part = rows.iloc[group].reset_index(drop=True)
        scored = offline_score_frame(worker_scorer, part)
        score[group] = scored.score
        valid[group] = scored.valid
        features = part.loc[:, list(schema.FEATURE_NAMES)].to_numpy(np.float64)
        for offset in np.flatnonzero(~scored.valid):
            reason[group[offset]] = dead_letter_reason(features[offset])
    return WorkerScores(rows, score, valid, reason)


def worker_pass(
    candidates: Sequence[Candidate], sources: Mapping[str, pd.DataFrame], shared_dir: Path
) -> dict[str, dict[str, WorkerScores]]:
    """source -> model name -> :class:`WorkerScores` of the rows outside its training data."""
    out: dict[str, dict[str, WorkerScores]] = {}
    for name, frame in sources.items():
        out[name] = {}
        for candidate in candidates:
            if candidate.worker_scorer is None:
                continue
            rows = outside_training(frame, shared_dir, candidate.train_files)
            if len(rows):
                out[name][candidate.name] = worker_scores_of(candidate.worker_scorer, rows)
    return out


def dead_letter_summary(valid: Any, reasons: Sequence[str | None]) -> dict[str, Any]:
    """Flows, dead letters (``~valid``), their share and their reasons (most frequent first)."""
    ok = np.asarray(valid, dtype=bool)
    counts: dict[str, int] = {}
    for row in np.flatnonzero(~ok):
        text = reasons[int(row)] or "unknown"
        counts[text] = counts.get(text, 0) + 1
    refused = int((~ok).sum())
    return {
        "flows": len(ok),
        "dead_letters": refused,
        "share": _rate(refused, len(ok)),
        "reasons": dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
    }


def split_halves(files: Sequence[str], by_file: bool) -> np.ndarray:
    """Half A (True) / half B (False) per row: by file, the files sorted by name taken in turn
    (the 1st, 3rd, ... in A); otherwise the rows taken in turn (rows 0, 2, ... in A)."""
    names = np.asarray(files, dtype=object)
    if not by_file:
        return np.arange(len(names)) % 2 == 0
    order = {name: index for index, name in enumerate(sorted(set(names.tolist())))}
    return np.array([order[name] % 2 == 0 for name in names], dtype=bool)


def calibrate_on_halves(
    scores: Any,
    is_attack: Any,
    half_a: Any,
    attack_floor: Any,
    own_threshold: float,
    target: float = CALIBRATION_TARGET,
    min_recall: float = 0.95,
) -> dict[str, dict[str, Any]]:
    """Per direction ("A->B", "B->A"): the threshold ``fit_threshold`` fits on one half's benign
    scores (``target`` alert rate, capped by ``attack_floor`` at ``min_recall``), and what it
    does on the other half's benign flows and on every attack flow.

    ``scores`` are by the worker's rules (NaN: dead-lettered, never an alert, left out of the
    false-alarm denominators and counted as missed attacks). A half with too few scorable
    benign flows gives ``{"error": ...}`` besides the counts. ``*_before``: at ``own_threshold``.
    """
    from stream_ids.calibration import fit_threshold

    # The worker compares float32 scores with float32 thresholds (stream_ids.calibration).
    score = np.asarray(scores, dtype=np.float32)
    truth = np.asarray(is_attack)
    in_a = np.asarray(half_a, dtype=bool)
    benign, attack = truth == 0, truth == 1
    floor = np.asarray(attack_floor, dtype=np.float64)
    attack_scores = score[attack]
    own = np.float32(own_threshold)
    out: dict[str, dict[str, Any]] = {}
    for direction, fit_half in (("A->B", in_a), ("B->A", ~in_a)):
        fit = score[fit_half & benign]
        test = score[~fit_half & benign]
        scored = test[np.isfinite(test)]
        before = int(np.sum(scored >= own))
        entry: dict[str, Any] = {
            "fit_benign": len(fit),
            "fit_scored": int(np.isfinite(fit).sum()),
            "test_benign": len(test),
            "test_scored": len(scored),
            "false_alarms_before": before,
            "false_alarm_rate_before": _rate(before, len(scored)),
            "attacks": int(attack.sum()),
            "recall_before": _rate(int(np.sum(attack_scores >= own)), int(attack.sum())),
        }
        try:
            fitted = fit_threshold(fit, target, floor if len(floor) else None, min_recall)
        except ConfigurationError as error:
            entry["error"] = str(error)
            out[direction] = entry
            continue
        threshold = np.float32(fitted["threshold"])
        false_alarms = int(np.sum(scored >= threshold))
        detected = int(np.sum(attack_scores >= threshold))
        entry.update(
            threshold=float(threshold),
            clean_quantile_threshold=fitted["clean_quantile_threshold"],
            ceiling=fitted["ceiling"],
            capped=bool(fitted["capped"]),
            fit_alert_rate=fitted["expected_alert_rate"],
            assured_alert_rate=fitted["assured_alert_rate"],
            false_alarms=false_alarms,
            false_alarm_rate=_rate(false_alarms, len(scored)),
            detected=detected,
            recall=_rate(detected, int(attack.sum())),
        )
        out[direction] = entry
    return out


def calibration_study(
    candidates: Sequence[Candidate],
    worker: Mapping[str, Mapping[str, WorkerScores]],
    groups: Mapping[str, str],
    target: float = CALIBRATION_TARGET,
    min_recall: float = 0.95,
) -> dict[str, dict[str, Any]]:
    """model -> {"attack_floor": ..., "rows": {source or pooled row: calibrate_on_halves + counts}}
    for every source with benign flows outside the model's training data; pcap sources split by
    capture file, the others by row; one pooled row over the other-datasets sources."""
    from stream_ids.calibration import reference_attack_scores

    study: dict[str, dict[str, Any]] = {}
    for candidate in candidates:
        if candidate.worker_scorer is None:
            continue
        # The attack floor of `stream-ids calibrate`: the embedded sample's attack flows.
        floor = reference_attack_scores(candidate.worker_scorer)
        rows: dict[str, Any] = {}
        pooled: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for source, by_model in worker.items():
            scored = by_model.get(candidate.name)
            if scored is None:
                continue
            truth = scored.rows["is_attack"].to_numpy(np.int64)
            if not np.any(truth == 0):
                continue
            by_file = groups.get(source) == "pcap"
            half_a = split_halves(scored.rows["source_file"].astype(str).tolist(), by_file)
            rows[source] = {
                "split": "by capture file" if by_file else "by row",
                **calibrate_on_halves(
                    scored.score, truth, half_a, floor, candidate.threshold, target, min_recall
                ),
            }
            if groups.get(source) == "other-datasets":
                pooled.append((scored.score, truth, half_a))
        if pooled:
            rows[OTHER_DATASETS_POOLED] = {
                "split": "by row within each source",
                **calibrate_on_halves(
                    np.concatenate([p[0] for p in pooled]),
                    np.concatenate([p[1] for p in pooled]),
                    np.concatenate([p[2] for p in pooled]),
                    floor,
                    candidate.threshold,
                    target,
                    min_recall,
                ),
            }
        study[candidate.name] = {
            "target": target,
            "min_recall": min_recall,
            "attack_floor_flows": len(floor),
            "rows": rows,
        }
    return study


def dead_letter_table(
    worker: Mapping[str, Mapping[str, WorkerScores]], threshold_of: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """source -> dead letters (from the first model scored by the worker's rules; the rules do
    not depend on the model) and, per model, false alarms on the benign flows the worker scores
    at the model's own threshold."""
    table: dict[str, dict[str, Any]] = {}
    for source, by_model in worker.items():
        if not by_model:
            continue
        first = next(iter(by_model.values()))
        entry = dead_letter_summary(first.valid, first.reason)
        entry["by_model"] = {}
        for name, scored in by_model.items():
            benign = scored.rows["is_attack"].to_numpy() == 0
            values = scored.score[benign & scored.valid].astype(np.float32)
            alarms = int(np.sum(values >= np.float32(threshold_of[name])))
            entry["by_model"][name] = {
                "benign_scored": len(values),
                "benign_dead_letters": int(np.sum(benign & ~scored.valid)),
                "false_alarms": alarms,
                "false_alarm_rate": _rate(alarms, len(values)),
            }
        table[source] = entry
    return table


# -- rendering -------------------------------------------------------------------------------------
def _percent(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def yardstick(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model, the numbers issue #16 sets targets on: test-split accuracy, pooled false-alarm
    rates on pcap/benign and on the benign rows of other-datasets, and recall at 1% false alarms
    per source with attacks."""
    out: dict[str, dict[str, Any]] = {}
    groups = {name: info.get("group") for name, info in report["sources"].items()}
    for candidate in report["models"]:
        name = candidate["name"]
        pooled = [0, 0]
        recall_at_far = {}
        for source, by_model in report["results"].items():
            metrics = by_model.get(name) or {}
            if metrics.get("in_training"):
                continue
            if groups.get(source) == "other-datasets":
                pooled[0] += metrics["false_alarms"]
                pooled[1] += metrics["benign"]
            if metrics.get("recall_at_far") is not None:
                recall_at_far[source] = metrics["recall_at_far"]
        benign_captures = report["results"].get("pcap/benign", {}).get(name) or {}
        split = candidate.get("test_split_cicids2017") or candidate.get("test_split") or {}
        out[name] = {
            "test_split_accuracy": split.get("accuracy"),
            "test_split_false_alarm_rate": split.get("false_alarm_rate"),
            "false_alarm_rate_pcap_benign": benign_captures.get("false_alarm_rate"),
            "false_alarms_pcap_benign": [
                benign_captures.get("false_alarms"),
                benign_captures.get("benign"),
            ],
            "false_alarm_rate_other_datasets": _rate(pooled[0], pooled[1]),
            "false_alarms_other_datasets": pooled,
            "recall_at_far": recall_at_far,
        }
    return out


def _yardstick_lines(report: Mapping[str, Any], stamp: str) -> list[str]:
    table = report.get("yardstick") or {}
    if not table:
        return []
    far = _percent(report.get("max_false_alarm", MAX_FALSE_ALARM), 0)
    lines = [
        "## Yardstick (the targets of issue #16)",
        "",
        "Targets: false alarms <= 1% on pcap/benign and on the benign rows of other-datasets "
        "(pooled) at the model's own threshold, <= 0.1% after per-site calibration (see "
        f"*Calibration on the other half*); recall >= 90% at <= {far} false alarms on "
        "cse-cic-ids2018-improved (and "
        "reported for every source with attacks); test-split accuracy >= 99.9%.",
        "",
        "| model | test-split accuracy | false alarms pcap/benign | false alarms other-datasets "
        f"benign | recall @ {far} FAR per source |",
        "|---|---|---|---|---|",
    ]
    for name, row in table.items():
        pcap_fa, pcap_n = row["false_alarms_pcap_benign"]
        other_fa, other_n = row["false_alarms_other_datasets"]
        recalls = ", ".join(
            f"{source} {_percent(value, 1)}" for source, value in row["recall_at_far"].items()
        )
        lines.append(
            f"| {name} | {_percent(row['test_split_accuracy'], 3)} | "
            f"{_percent(row['false_alarm_rate_pcap_benign'])} ({pcap_fa}/{pcap_n}) | "
            f"{_percent(row['false_alarm_rate_other_datasets'])} ({other_fa}/{other_n}) | "
            f"{recalls or 'n/a'} |"
        )
    return [*lines, "", stamp, ""]


def _fraction(count: Any, total: Any, digits: int = 2) -> str:
    return f"{_percent(_rate(count, total), digits)} ({count:,}/{total:,})" if total else "n/a"


def _calibrated_cell(row: Mapping[str, Any] | None) -> tuple[str, bool | None]:
    """ "A->B 0.54% (1/186), B->A ..." for one calibration row and whether both meet the bound."""
    if not row:
        return "n/a", None
    cells, met = [], True
    for direction in ("A->B", "B->A"):
        entry = row.get(direction) or {}
        if "error" in entry or "false_alarms" not in entry:
            cells.append(f"{direction} not calibratable")
            met = False
            continue
        capped = ", capped" if entry.get("capped") else ""
        assured = entry.get("assured_alert_rate")
        vouched = (
            f"; {entry['fit_scored']:,} flows vouch for <= {_percent(assured)}"
            if assured is not None
            else ""
        )
        cells.append(
            f"{direction} {_fraction(entry['false_alarms'], entry['test_scored'], 2)}"
            f" (threshold {entry['threshold']:.4g}{capped}{vouched})"
        )
        met = (
            met
            and entry["false_alarm_rate"] is not None
            and (entry["false_alarm_rate"] <= CALIBRATION_TARGET)
        )
    return "; ".join(cells), met


def issue_targets(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Issue #16's targets for the first model (the shipped one): target, bound, measured, met
    (True/False, None when not measurable). Reads the yardstick, dead-letter and calibration
    parts of ``report``."""
    models = report.get("models") or []
    if not models:
        return []
    name = models[0]["name"]
    row = (report.get("yardstick") or {}).get(name) or {}
    groups = {source: info.get("group") for source, info in report.get("sources", {}).items()}
    dead = report.get("dead_letters") or {}
    study = ((report.get("calibration") or {}).get(name) or {}).get("rows") or {}
    targets: list[dict[str, Any]] = []

    def add(target: str, bound: str, measured: str, met: bool | None) -> None:
        targets.append({"target": target, "bound": bound, "measured": measured, "met": met})

    def at_most(value: float | None, bound: float) -> bool | None:
        return None if value is None else value <= bound

    pcap_fa, pcap_n = row.get("false_alarms_pcap_benign") or [None, None]
    pcap_rate = row.get("false_alarm_rate_pcap_benign")
    add(
        "false alarms on pcap/benign, no calibration",
        "<= 1%",
        _fraction(pcap_fa, pcap_n) if pcap_n else "n/a",
        at_most(pcap_rate, 0.01),
    )
    other_fa, other_n = row.get("false_alarms_other_datasets") or [0, 0]
    worker_fa = worker_n = refused = 0
    for source, entry in dead.items():
        if groups.get(source) == "other-datasets" and name in entry.get("by_model", {}):
            numbers = entry["by_model"][name]
            worker_fa += numbers["false_alarms"]
            worker_n += numbers["benign_scored"]
            refused += numbers["benign_dead_letters"]
    measured = f"{_fraction(other_fa, other_n)} of all rows (the report's scores)"
    if dead:
        measured += (
            f"; {_fraction(worker_fa, worker_n)} of the flows the worker scores "
            f"({refused:,} dead-lettered)"
        )
    add(
        "false alarms on other-datasets benign rows (pooled), no calibration",
        "<= 1%",
        measured,
        at_most(_rate(other_fa, other_n), 0.01),
    )
    for label, key in (
        ("pcap/benign", "pcap/benign"),
        ("other-datasets benign rows (pooled)", OTHER_DATASETS_POOLED),
    ):
        cell, met = _calibrated_cell(study.get(key))
        add(f"false alarms on {label}, calibrated on the other half", "<= 0.1%", cell, met)
    recall = (row.get("recall_at_far") or {}).get("cse-cic-ids2018-improved")
    add(
        "recall at <= 1% false alarms on cse-cic-ids2018-improved",
        ">= 90%",
        _percent(recall, 1),
        None if recall is None else recall >= 0.90,
    )
    accuracy = row.get("test_split_accuracy")
    add(
        "test-split accuracy (CICIDS2017)",
        ">= 99.9%",
        _percent(accuracy, 3),
        None if accuracy is None else accuracy >= 0.999,
    )
    false_alarms = row.get("test_split_false_alarm_rate")
    add(
        "test-split false alarms (CICIDS2017)",
        "<= 0.1%",
        _percent(false_alarms, 3),
        None if false_alarms is None else false_alarms <= 0.001,
    )
    return targets


def _targets_lines(report: Mapping[str, Any], stamp: str) -> list[str]:
    targets = report.get("targets") or []
    if not targets:
        return []
    verdict = {True: "**met**", False: "not met", None: "n/a"}
    lines = [
        "## Targets of issue #16",
        "",
        f"The shipped model ({report['models'][0]['name']}) against each target. *Calibrated on "
        "the other half*: `stream_ids.calibration.fit_threshold` (target 0.1% alerts, capped so "
        "that 95% of the embedded sample's attack flows still alert, as `stream-ids calibrate` "
        "does) fitted on half A's benign flows, measured on half B's, and the other way round "
        "(see *Calibration on the other half*); both directions must meet the bound.",
        "",
        "| target | bound | measured | met |",
        "|---|---|---|---|",
    ]
    name = report["models"][0]["name"]
    rows = ((report.get("calibration") or {}).get(name) or {}).get("rows") or {}
    ceilings = {
        entry["ceiling"]
        for row in rows.values()
        for direction, entry in row.items()
        if direction in ("A->B", "B->A") and isinstance(entry, dict) and entry.get("capped")
    }
    for target in targets:
        lines.append(
            f"| {target['target']} | {target['bound']} | {target['measured']} | "
            f"{verdict[target['met']]} |"
        )
    if ceilings:
        lines += [
            "",
            "*Capped*: the 0.1% quantile of the fitting half's benign scores lies above "
            + ", ".join(f"{value:.4g}" for value in sorted(ceilings))
            + ", the score that 95% of the embedded sample's attack flows reach, so the attack "
            "floor set the threshold: on this traffic the model cannot reach 0.1% false alarms "
            "by a threshold without missing more than 5% of the attacks it was trained on. "
            "Dead-lettered flows are left out of the worker-scored rates (see *The worker's dead "
            "letters*).",
        ]
    return [*lines, "", stamp, ""]


def _calibration_lines(report: Mapping[str, Any], stamp: str) -> list[str]:
    from stream_ids.calibration import flows_needed

    study = report.get("calibration") or {}
    if not study:
        return []
    lines = [
        "## Calibration on the other half",
        "",
        "Per source with benign flows outside the model's training data, split in two halves "
        "(pcap/benign by capture file: the captures sorted by name taken in turn; the other "
        "sources by row, taken in turn): the threshold is fitted on one half's benign flows "
        "with `stream_ids.calibration.fit_threshold` (target 0.1% alerts) and the attack floor "
        "of `stream-ids calibrate` (the embedded CICIDS2017 sample's attack flows, 95% of which "
        "must still alert; *capped*: the floor, not the 0.1% quantile, set the threshold), then "
        "applied to the other half's benign flows and to every attack flow of the source. "
        f"The pooled *{OTHER_DATASETS_POOLED}* row fits one threshold on the A halves of all "
        "other-datasets sources together. Everything here is by the worker's rules "
        "(`stream_ids.offline.score_frame`, file by file): dead-lettered flows neither "
        "calibrate nor alert (they are left out of the false-alarm denominators, and count as "
        "missed attacks); `stream-ids calibrate` needs 100 scorable flows, so a half with fewer "
        "is *not calibratable*. *Before*: the same half at the model's own threshold. "
        "*Vouched for*: the false-alarm rate the fit half can vouch for on traffic like it, "
        "(m + 1) / (n + 1) with m of its n flows alerting (the conformal bound, on "
        "average over calibrations, that `stream-ids calibrate` reports; it cannot reach "
        f"{_percent(CALIBRATION_TARGET, 1)} with fewer than "
        f"{math.ceil(1 / CALIBRATION_TARGET - 1 - 1e-9):,} flows, and stays within a quarter "
        f"of it from {flows_needed(CALIBRATION_TARGET):,} on).",
        "",
        "| source | model | fit -> test | benign flows fit / tested | threshold | vouched for | "
        "false alarms before | false alarms after | recall before | recall after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, info in study.items():
        for source, row in info["rows"].items():
            for direction in ("A->B", "B->A"):
                entry = row[direction]
                counts = f"{entry['fit_scored']:,} / {entry['test_scored']:,}"
                refused = (
                    entry["fit_benign"] - entry["fit_scored"],
                    entry["test_benign"] - entry["test_scored"],
                )
                if any(refused):
                    counts += f" ({refused[0]:,} / {refused[1]:,} dead-lettered)"
                before = _fraction(entry["false_alarms_before"], entry["test_scored"])
                recall_before = _percent(entry["recall_before"])
                vouched = _percent(entry.get("assured_alert_rate"))
                if "error" in entry:
                    threshold = f"not calibratable ({entry['fit_scored']} scorable flows)"
                    after = recall = vouched = "n/a"
                else:
                    threshold = f"{entry['threshold']:.4g}" + (
                        " (capped)" if entry["capped"] else ""
                    )
                    after = _fraction(entry["false_alarms"], entry["test_scored"])
                    recall = (
                        _fraction(entry["detected"], entry["attacks"])
                        if entry["attacks"]
                        else "n/a"
                    )
                lines.append(
                    f"| {source} ({row['split']}) | {name} | {direction} | {counts} | "
                    f"{threshold} | {vouched} | {before} | {after} | "
                    f"{recall_before if entry['attacks'] else 'n/a'} | {recall} |"
                )
    return [*lines, "", stamp, ""]


def _dead_letter_lines(report: Mapping[str, Any], stamp: str) -> list[str]:
    dead = report.get("dead_letters") or {}
    if not dead:
        return []
    models = list(dict.fromkeys(m for entry in dead.values() for m in entry["by_model"]))
    lines = [
        "## The worker's dead letters",
        "",
        "The model scores in the other sections use `Scorer.score_frame` on **all** rows of a "
        "source. A streaming worker refuses some of those rows: a flow that breaks a range rule "
        "(NaN or Infinity outside the rate features, a negative count, a magnitude above 1e15: "
        "`stream_ids.wire.check_rows`) goes to the dead-letter topic with its reason, gets no "
        "verdict and never enters its host's window. Below, per source, the share of flows the "
        "worker would dead-letter (`stream_ids.offline.score_frame(...).valid`) and why, and "
        "the false alarms at the model's own threshold on the benign flows the worker does "
        "score (windows rebuilt without the refused flows). The calibration section uses these "
        "worker scores.",
        "",
        "| source | flows | dead-lettered | reasons | "
        + " | ".join(f"false alarms, worker-scored benign: {m}" for m in models)
        + " |",
        "|---|---|---|---|" + "---|" * len(models),
    ]
    for source, entry in dead.items():
        reasons = ", ".join(f"{text} ({count:,})" for text, count in entry["reasons"].items())
        cells = []
        for model_name in models:
            numbers = entry["by_model"].get(model_name)
            cells.append(
                "n/a"
                if numbers is None or not numbers["benign_scored"]
                else _fraction(numbers["false_alarms"], numbers["benign_scored"])
            )
        lines.append(
            f"| {source} | {entry['flows']:,} | "
            f"{_fraction(entry['dead_letters'], entry['flows'])} | {reasons or '-'} | "
            + " | ".join(cells)
            + " |"
        )
    return [*lines, "", stamp, ""]


def summary_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (source, model): the headline numbers, also what the table and plot show."""
    rows = []
    for candidate in report["models"]:
        split = candidate.get("test_split")
        if split:
            rows.append(
                {
                    "source": "training data, test split",
                    "model": candidate["name"],
                    **split,
                }
            )
        cicids2017 = candidate.get("test_split_cicids2017")
        if cicids2017:
            rows.append(
                {
                    "source": "training data, test split: cicids2017 rows",
                    "model": candidate["name"],
                    **cicids2017,
                }
            )
    for source, by_model in report["results"].items():
        for model_name, metrics in by_model.items():
            rows.append({"source": source, "model": model_name, **metrics})
    return rows


def _captures_first_lines(report: Mapping[str, Any]) -> list[str]:
    """Say so when a model trained on flows of the benign captures (``runs/captures``, not in
    the repository): without them here its test split and the random forest are not measured."""
    if not any(
        CAPTURES_DIR in str(path)
        for candidate in report["models"]
        for path in candidate.get("train_files", [])
    ):
        return []
    return [
        f"A model here trained on flows of the benign captures (`{CAPTURES_DIR}/`, not in the "
        "repository): `python -m model.captures` writes them first (same halves, same "
        "extractor); without them the report still scores every source, but not the model's "
        "own test split or the random forest.",
        "",
    ]


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: sources, the headline table, families, captures, drift."""
    command, date = report["command"], report["date"]
    stamp = f"_`{command}`, {date}._"
    lines = [
        "# Generalization report",
        "",
        f"Every number on this page was produced by one command, run on {date} "
        f"(git `{report.get('git_commit', '?')}`, {report.get('seconds', 0):.0f} s on "
        f"{report.get('machine', 'this machine')}, "
        f"{'extracting the captures' if report.get('extracted_now') else 'captures from the cache'}"
        f"; extracting them all takes {report.get('extraction_seconds', 0):.0f} s):",
        "",
        "```",
        command,
        "```",
        "",
        "It scores each model below on every source that was not in that model's training data "
        "(a source's files that were are left out for that model) and, for reference, on the test "
        "split of the model's own training data. Nothing was retrained or tuned except the random "
        "forest, which is fitted in the run on the same training split and never saved. Raw "
        "numbers: `docs/generalization.json`; plots: `docs/img/generalization.png`, "
        "`docs/img/generalization-drift.png`.",
        "",
        *_captures_first_lines(report),
        *_targets_lines(report, stamp),
        "## Models",
        "",
    ]
    for candidate in report["models"]:
        lines.append(f"- **{candidate['name']}** ({candidate['kind']}): {candidate['detail']}")
    lines += ["", *_yardstick_lines(report, stamp)]
    lines += _calibration_lines(report, stamp)
    lines += _dead_letter_lines(report, stamp)
    lines += [
        "## Sources",
        "",
        "Under `../shared/data` (its README describes each). *In training*: files of the source "
        "that the first model was trained on; their rows are not scored (the training data is "
        "represented by its test split). Ground truth not in the files: cic-darknet2020's labels "
        "are traffic classes (Non-Tor, AUDIO-STREAMING, ...) of ordinary user traffic and "
        "pcap/benign is ordinary app traffic, so both count as benign; the CIC-DDoS2019 "
        "captures have no labels.",
        "",
        "| source | what it is | files (in training) | flows | benign | attack | unlabelled |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, info in report["sources"].items():
        files = f"{len(info.get('files', []))} ({info.get('files_in_training', 0)})"
        lines.append(
            f"| {name} | {info['description']} | {files} | {_count(info['flows'])} | "
            f"{_count(info['benign'])} | {_count(info['attacks'])} | {_count(info['unlabelled'])} |"
        )
    if report.get("skipped"):
        lines += ["", "Left out:", ""]
        lines += [f"- `{path}`: {reason}" for path, reason in report["skipped"].items()]
    far = _percent(report.get("max_false_alarm", MAX_FALSE_ALARM), 0)
    lines += [
        "",
        "## Per source",
        "",
        "How to read it: attack is the positive class. *False alarms* = benign flows at or above "
        "the model's own threshold / benign flows; *recall* = attack flows at or above it / "
        f"attack flows; *recall @ {far} FAR* is threshold-free: the threshold is read off this "
        f"source's own ROC curve at the highest point with at most {far} false alarms, so it says "
        "how well the scores rank attacks above this source's benign flows (what per-site "
        "calibration could reach), not what the shipped threshold does; *alerts (unlabelled)* = "
        "share of unlabelled flows at or above the threshold. n/a: the source has no flow of "
        "that class. A model trained on the source says *in training*.",
        "",
        f"| source | model | flows | false alarms | recall | recall @ {far} FAR | ROC AUC | "
        "alerts (unlabelled) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary_rows(report):
        if row.get("in_training"):
            lines.append(f"| {row['source']} | {row['model']} | in training | | | | | |")
            continue
        false_alarms = (
            f"{_percent(row['false_alarm_rate'])} ({row['false_alarms']:,}/{row['benign']:,})"
            if row["benign"]
            else "n/a"
        )
        recall = (
            f"{_percent(row['recall'])} ({row['detected']:,}/{row['attacks']:,})"
            if row["attacks"]
            else "n/a"
        )
        unlabelled = (
            f"{_percent(row['alert_rate_unlabelled'])} "
            f"({row['unlabelled_alerts']:,}/{row['unlabelled']:,})"
            if row["unlabelled"]
            else "n/a"
        )
        lines.append(
            f"| {row['source']} | {row['model']} | {row['flows']:,} | {false_alarms} | {recall} | "
            f"{_percent(row['recall_at_far'])} | {_number(row['roc_auc'])} | {unlabelled} |"
        )
    lines += ["", stamp, "", "![false alarms and recall per source](img/generalization.png)", ""]
    lines += _false_alarm_lines(report, stamp)
    lines += _family_lines(report, stamp)
    lines += _capture_lines(report, stamp)
    lines += _drift_lines(report, stamp)
    return "\n".join(lines).rstrip() + "\n"


def _false_alarm_lines(report: Mapping[str, Any], stamp: str) -> list[str]:
    """The first model's false alarms by direction and service, per source (none: no lines)."""
    first = report["models"][0]["name"]
    by_source = {
        source: found
        for source, models in report["results"].items()
        if (found := models.get(first, {}).get("false_alarm_kinds"))
        and found["false_alarms"]
    }
    return false_alarms.markdown_lines(by_source, first, stamp) if by_source else []


def _family_lines(report: Mapping[str, Any], stamp: str) -> list[str]:
    rows = []
    for row in summary_rows(report):
        for family, numbers in (row.get("families") or {}).items():
            rows.append(
                f"| {row['source']} | {family} | {row['model']} | {numbers['flows']:,} | "
                f"{_percent(numbers['recall'])} | {_percent(numbers['recall_at_far'])} |"
            )
    if not rows:
        return []
    far = _percent(report.get("max_false_alarm", MAX_FALSE_ALARM), 0)
    return [
        "## Recall per attack family",
        "",
        "Labels of the same attack differ between datasets; they are mapped to one family name "
        "(`model.generalization.attack_family`). *@ FAR*: at the source's threshold for "
        f"{far} false alarms (see above).",
        "",
        f"| source | family | model | attack flows | recall | recall @ {far} FAR |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        stamp,
        "",
    ]


def _capture_lines(report: Mapping[str, Any], stamp: str) -> list[str]:
    captures = report.get("captures") or {}
    if not captures:
        return []
    models = [candidate["name"] for candidate in report["models"]]
    lines = [
        "## Captures through the Python cicflowmeter",
        "",
        f"Extractor: `cicflowmeter` {report.get('extractor_version', '?')} (PyPI) via "
        "`tests/integration/cicflowmeter_runner.py`; its durations are seconds, scaled to the "
        "training data's microseconds. Output cached by sha256 under "
        f"`runs/generalization/flows/`. Extracting every capture took "
        f"{report.get('extraction_seconds', 0):.0f} s in all, the 24 benign ones "
        f"{report.get('benign_extraction_seconds', 0):.0f} s (measured when the cache was "
        "filled, one capture at a time). The pooled pcap/benign row above is the false-alarm "
        "rate on someone else's normal traffic; below, every capture's share of flows that "
        "raised an alert. Many captures hold a single long connection (one flow). Two "
        "extractions of the same capture can differ by a few flows (seen for the SYN flood and "
        "instagram captures; the package expires flows from a background thread on wall-clock "
        "time), so the cache, not a re-extraction, keeps reruns comparable.",
        "",
        "The package measures packet lengths as whole frames (`len(packet)`: Ethernet, IP and "
        "TCP headers included) where Java CICFlowMeter counts payload bytes: a SYN of the flood "
        "is 60 bytes long here and 0 in the training data, one reason the packet-length "
        "features drift so far for both capture sources.",
        "",
        "| capture | flows | extraction s | " + " | ".join(f"alerts {m}" for m in models) + " |",
        "|---|---|---|" + "---|" * len(models),
    ]
    for name, info in captures.items():
        cells = []
        for model_name in models:
            metrics = info["by_model"].get(model_name)
            if metrics is None:
                cells.append("n/a")
            else:
                alerts = (
                    metrics["false_alarms"] + metrics["detected"] + metrics["unlabelled_alerts"]
                )
                cells.append(
                    f"{_percent(alerts / metrics['flows'] if metrics['flows'] else None)} "
                    f"({alerts}/{metrics['flows']})"
                )
        lines.append(
            f"| {name} | {info['flows']:,} | {info['seconds']:.1f} | " + " | ".join(cells) + " |"
        )
    return [*lines, "", stamp, ""]


def _drift_lines(report: Mapping[str, Any], stamp: str) -> list[str]:
    drift = report.get("drift")
    if not drift:
        return []
    table = pd.DataFrame(drift["psi"])
    benign = pd.DataFrame(drift.get("psi_benign") or {})
    order = table.mean(axis=1).sort_values(ascending=False).index[: drift.get("top", 15)]
    columns = list(table.columns)
    lines = [
        "## Feature drift against the training rows",
        "",
        f"Population stability index (PSI) per feature of each source against the "
        f"{drift['reference_rows']:,} training-split rows, in the loader's canonical units "
        f"(10 quantile bins of the training rows, NaN its own bin, shares floored at "
        f"{PSI_EPSILON:g}). Below 0.1: stable, 0.1-0.25: moderate, above 0.25: large. The "
        "training data's own test split is the noise floor. Heat map of all 76 features: "
        "`docs/img/generalization-drift.png`.",
        "",
        f"Top {len(order)} features by mean PSI over the sources (all rows of each source):",
        "",
        "| feature | mean | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for feature in order:
        cells = " | ".join(_number(table.loc[feature, column], 2) for column in columns)
        lines.append(f"| {feature} | {table.loc[feature].mean():.2f} | {cells} |")
    if len(benign.columns):
        top_benign = benign.mean(axis=1).sort_values(ascending=False).index[:10]
        lines += [
            "",
            "Benign rows only, against the benign training rows (separates the extractor and the "
            "network from the attack mix): top 10 by mean PSI:",
            "",
            "| feature | mean | " + " | ".join(benign.columns) + " |",
            "|---|---|" + "---|" * len(benign.columns),
        ]
        for feature in top_benign:
            cells = " | ".join(_number(benign.loc[feature, c], 2) for c in benign.columns)
            lines.append(f"| {feature} | {benign.loc[feature].mean():.2f} | {cells} |")
    if drift.get("extractor_features"):
        lines += [
            "",
            "Features that differ most between extractor versions (largest mean benign-row PSI "
            "across the sources written by other CICFlowMeter versions: "
            + ", ".join(drift["extractor_sources"])
            + "): "
            + ", ".join(f"`{name}`" for name in drift["extractor_features"])
            + ".",
        ]
    return [*lines, "", stamp, "", "![PSI heat map](img/generalization-drift.png)", ""]


def plot_summary(report: Mapping[str, Any], path: Path) -> None:
    """Bars per source: false-alarm rate, recall and recall @ 1% FAR for each model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in summary_rows(report) if not row.get("in_training")]
    sources = list(dict.fromkeys(row["source"] for row in rows))
    models = list(dict.fromkeys(row["model"] for row in rows))
    metrics = (
        ("false_alarm_rate", "false-alarm rate (benign flows)"),
        ("recall", "recall at the model's threshold"),
        ("recall_at_far", "recall @ 1% false alarms (ROC)"),
        ("alert_rate_unlabelled", "alert rate (unlabelled flows)"),
    )
    fig, axes = plt.subplots(len(metrics), 1, figsize=(11, 3.0 * len(metrics)), sharex=True)
    width = 0.8 / max(len(models), 1)
    positions = np.arange(len(sources))
    for axis, (key, title) in zip(axes, metrics, strict=True):
        for offset, model_name in enumerate(models):
            values = []
            for source in sources:
                match = [r for r in rows if r["source"] == source and r["model"] == model_name]
                value = match[0].get(key) if match else None
                values.append(np.nan if value is None else 100 * value)
            bars = axis.bar(positions + offset * width, values, width, label=model_name)
            for bar, value in zip(bars, values, strict=True):
                if not np.isnan(value):
                    axis.annotate(
                        f"{value:.1f}",
                        (bar.get_x() + bar.get_width() / 2, value),
                        ha="center",
                        va="bottom",
                        fontsize=6,
                    )
        axis.set_ylabel("%")
        axis.set_ylim(0, 110)
        axis.set_title(title, fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    axes[-1].set_xticks(
        positions + width * (len(models) - 1) / 2, sources, rotation=25, ha="right", fontsize=8
    )
    fig.suptitle(f"Generalization ({report['date']}); n/a bars are absent", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_drift(table: pd.DataFrame, path: Path, title: str) -> None:
    """Heat map of PSI, features (rows, by mean PSI) x sources, colours capped at 5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = table.loc[table.mean(axis=1).sort_values(ascending=False).index]
    fig, axis = plt.subplots(figsize=(2.0 + 1.1 * len(ordered.columns), 0.19 * len(ordered) + 2))
    image = axis.imshow(
        np.clip(ordered.to_numpy(), 0, 5), aspect="auto", cmap="magma_r", vmin=0, vmax=5
    )
    for (row, column), value in np.ndenumerate(ordered.to_numpy()):
        if not np.isnan(value):
            axis.text(
                column,
                row,
                f"{value:.1f}",
                ha="center",
                va="center",
                fontsize=5,
                color="white" if value > 2.5 else "black",
            )
    axis.set_yticks(range(len(ordered)), ordered.index, fontsize=6)
    axis.set_xticks(
        range(len(ordered.columns)), ordered.columns, rotation=30, ha="right", fontsize=7
    )
    fig.colorbar(image, ax=axis, label="PSI (capped at 5)", shrink=0.5)
    axis.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- the command -----------------------------------------------------------------------------------
def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return result.stdout.strip() or "?"


def _extractor_version(extractor_python: Path) -> str:
    if not extractor_python.exists():
        return "not installed"
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            str(extractor_python),
            "-c",
            "import importlib.metadata as m; print(m.version('cicflowmeter'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout.strip() or "?"


def _source_summary(
    frame: pd.DataFrame, name: str, shared_dir: Path, train_files: Iterable[Path]
) -> dict[str, Any]:
    truth = frame["is_attack"].to_numpy()
    files = sorted(pd.unique(frame["source_file"]))
    trained = {_relative(path, shared_dir) for path in train_files}
    return {
        "description": SOURCE_DESCRIPTIONS.get(name, name),
        "group": name.split("/")[0] if "/" in name else str(files[0]).split("/")[0],
        "files": files,
        "files_in_training": sum(file in trained for file in files),
        "flows": len(frame),
        "benign": int(np.sum(truth == 0)),
        "attacks": int(np.sum(truth == 1)),
        "unlabelled": int(np.sum(truth < 0)),
    }


def build_drift(
    reference: pd.DataFrame, sources: Mapping[str, pd.DataFrame], test_split: pd.DataFrame | None
) -> dict[str, Any]:
    """PSI tables (all rows; benign rows against benign training rows) as nested dicts."""
    frames: dict[str, pd.DataFrame] = {}
    if test_split is not None:
        frames["cicids2017 test split"] = test_split
    frames.update(sources)
    table = drift_table(reference, frames)
    benign_frames = {
        name: frame.loc[frame["is_attack"].to_numpy() == 0]
        for name, frame in frames.items()
        if np.any(frame["is_attack"].to_numpy() == 0)
    }
    benign = drift_table(reference.loc[reference["is_attack"].to_numpy() == 0], benign_frames)
    extractor_sources = [
        name
        for name in benign.columns
        if name not in ("cicids2017 test split", "cse-cic-ids2018-improved")
    ]
    extractor_features = (
        list(benign[extractor_sources].mean(axis=1).sort_values(ascending=False).index[:8])
        if extractor_sources
        else []
    )
    return {
        "reference_rows": len(reference),
        "psi": table.to_dict(),
        "psi_benign": benign.to_dict(),
        "extractor_sources": extractor_sources,
        "extractor_features": extractor_features,
        "top": 15,
        "table": table,
    }


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    started = time.perf_counter()
    shared_dir = Path(args.shared).resolve()
    model_dirs = [Path(d) for d in [*(args.model or []), *(args.compare or [])]] or [
        REPO_ROOT / "model" / "shipped"
    ]
    skipped: dict[str, str] = {}
    extractions: list[Extraction] = []
    console.log(f"sources under {shared_dir}")
    sources = load_sources(
        shared_dir,
        Path(args.cache),
        Path(args.extractor_python),
        captures=not args.no_captures,
        skipped=skipped,
        extractions=extractions,
    )
    candidates: list[Candidate] = []
    first_prepared: dict[str, Any] | None = None
    for model_dir in model_dirs:
        console.log(f"model {model_dir}")
        candidate, prepared = cnn_lstm_candidate(model_dir)
        if any(other.name == candidate.name for other in candidates):
            candidate.name = f"{candidate.name} ({model_dir})"
        candidates.append(candidate)
        if first_prepared is None and prepared is not None:
            first_prepared = prepared
            first_files = candidate.train_files
    if not args.no_rf and first_prepared is not None:
        console.log(f"random forest on {len(first_prepared['idx']['train']):,} training flows")
        candidates.append(
            random_forest_candidate(
                first_prepared, first_files, args.rf_seed, args.rf_trees, args.jobs
            )
        )
    # Sources that are wholly a model's training data and give it no other rows (CICIDS2017
    # improved) appear through the test split instead.
    scored_sources = {
        name: frame
        for name, frame in sources.items()
        if any(len(outside_training(frame, shared_dir, c.train_files)) for c in candidates)
    }
    results = evaluate(candidates, scored_sources, shared_dir, args.max_false_alarm)
    console.log("scoring by the worker's rules: dead letters, calibration on halves")
    worker = worker_pass(candidates, scored_sources, shared_dir)
    captures: dict[str, Any] = {}
    seconds_by_pcap = {_relative(e.pcap, shared_dir): e.seconds for e in extractions}
    for name in ("pcap/cic-ddos2019", "pcap/benign"):
        for file, flows in sources.get(name, pd.DataFrame(columns=["source_file"])).groupby(
            "source_file", sort=True
        ):
            captures[str(file)] = {
                "flows": len(flows),
                "seconds": seconds_by_pcap.get(str(file), float("nan")),
                "by_model": {
                    model_name: metrics["by_file"].get(str(file))
                    for model_name, metrics in results.get(name, {}).items()
                    if "by_file" in metrics
                },
            }
    drift: dict[str, Any] = {}
    if first_prepared is not None:
        frame, idx = first_prepared["frame"], first_prepared["idx"]
        drift = build_drift(
            frame.iloc[idx["train"]],
            {n: f for n, f in sources.items() if n != "cicids2017-improved"},
            frame.iloc[idx["test"]],
        )
    benign_extraction = sum(e.seconds for e in extractions if e.pcap.parent.name == "benign")
    report: dict[str, Any] = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": _git_commit(),
        "machine": f"{os.cpu_count()} CPU cores shared",
        "max_false_alarm": args.max_false_alarm,
        "extractor_version": _extractor_version(Path(args.extractor_python)),
        "extraction_seconds": sum(e.seconds for e in extractions),
        "extracted_now": any(not e.cached for e in extractions),
        "benign_extraction_seconds": benign_extraction,
        "models": [
            {
                "name": c.name,
                "kind": c.kind,
                "detail": c.detail,
                "threshold": c.threshold,
                "train_files": [_relative(p, shared_dir) for p in c.train_files],
                "test_split": c.test_split,
                "test_split_cicids2017": c.test_split_cicids2017,
                "seconds": c.seconds,
            }
            for c in candidates
        ],
        "sources": {
            name: _source_summary(
                frame, name, shared_dir, candidates[0].train_files if candidates else []
            )
            for name, frame in sources.items()
        },
        "skipped": skipped,
        "results": results,
        "captures": captures,
        "drift": drift,
    }
    report["yardstick"] = yardstick(report)
    report["dead_letters"] = dead_letter_table(worker, {c.name: c.threshold for c in candidates})
    groups = {name: info["group"] for name, info in report["sources"].items()}
    report["calibration"] = calibration_study(candidates, worker, groups)
    report["targets"] = issue_targets(report)
    report["seconds"] = time.perf_counter() - started
    return report


def write_outputs(report: dict[str, Any], markdown: Path, json_path: Path, images: Path) -> None:
    drift = report.get("drift") or {}
    table = drift.pop("table", None)
    plot_summary(report, images / "generalization.png")
    if table is not None:
        plot_drift(
            table,
            images / "generalization-drift.png",
            f"PSI per feature against the training rows ({report['date']})",
        )
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render_markdown(report))
    json_path.write_text(json.dumps(_json_ready(report), indent=1) + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from stream_ids.datasets import shared_data_dir

    parser = argparse.ArgumentParser(
        prog="python -m model.generalization", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--model", action="append", help="model directory (repeatable); default model/shipped"
    )
    parser.add_argument(
        "--compare",
        action="append",
        help="another model directory to show in the same tables (repeatable)",
    )
    parser.add_argument(
        "--shared", default=None, help="shared data folder (default ../shared/data)"
    )
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="cicflowmeter output cache")
    parser.add_argument("--extractor-python", default=str(DEFAULT_EXTRACTOR_PYTHON))
    parser.add_argument("--no-captures", action="store_true", help="skip the pcap sources")
    parser.add_argument("--no-rf", action="store_true", help="skip the random forest")
    parser.add_argument("--rf-seed", type=int, default=11)
    parser.add_argument("--rf-trees", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1, help="random forest jobs (shared CPUs)")
    parser.add_argument("--max-false-alarm", type=float, default=MAX_FALSE_ALARM)
    parser.add_argument("--out", default="docs/generalization.md")
    parser.add_argument("--json", default="docs/generalization.json")
    parser.add_argument("--images", default="docs/img")
    args = parser.parse_args(argv)
    if args.shared is None:
        args.shared = str(shared_data_dir())
    return args


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    command = shlex.join(["python", "-m", "model.generalization", *arguments])
    report = run(args, command)
    write_outputs(report, Path(args.out), Path(args.json), Path(args.images))
    console.log(
        f"wrote {args.out}, {args.json}, {args.images}/generalization*.png "
        f"in {report['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
