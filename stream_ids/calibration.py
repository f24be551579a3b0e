"""Per-site calibration: an alert threshold set from a site's own traffic.

A model's shipped threshold was chosen on its training captures; on another network the scores
of ordinary traffic sit elsewhere (docs/generalization.md). Calibration reads flows of the
site's traffic believed clean, and sets the threshold at the ``1 - target`` quantile of their
scores, so that about ``target`` of such traffic alerts. A *ceiling* keeps known attacks
alerting: the threshold never rises above the score that ``min_recall`` of the reference attack
flows (the embedded CICIDS2017 sample's, by default) reach; when the two disagree the ceiling
wins and the calibration says so (``capped``).

How far the flows used can vouch for the target: if the site's later clean traffic is like the
flows used (exchangeable), a flow of it alerts with probability at most ``(m + 1) / (n + 1)``,
``m`` of the ``n`` flows used being at or above the threshold, on average over calibrations
(the split-conformal bound; one calibration can land above it). That is
``assured_alert_rate``. The quantile lets ``floor(target * n)`` flows alert, so the bound
exceeds the target by up to ``1 / (n + 1)``: it is within a quarter of the target from
``4 / target - 5`` flows on (3,995 for 0.1%; :func:`flows_needed`), and with fewer than
``1 / target - 1`` (999) the threshold sits just above the highest clean score and still
vouches for less. A capped threshold is the floor's, not the site's: its bound says how much
clean traffic reaches the attacks' scores.

``calibration.json`` lies beside the model (``model.keras``, ``transform.json``); it names the
model it was made for (the sha256 of ``model.keras``), and :meth:`stream_ids.scorer.Scorer.load`
applies it only to that model, refusing one made for another.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_ids.errors import ArtifactError, ConfigurationError

if TYPE_CHECKING:
    from stream_ids.scorer import Scorer

CALIBRATION_FILE = "calibration.json"
FORMAT = "stream-ids-calibration"
FORMAT_VERSION = 2  # 2: assured_alert_rate added
READABLE_VERSIONS = (1, 2)  # a version 1 file has no assured_alert_rate (None)
DEFAULT_TARGET = 0.001  # 0.1% of clean traffic alerts
DEFAULT_MIN_RECALL = 0.95  # of the reference attack flows
MIN_FLOWS = 100  # fewer clean flows cannot place even a 1% quantile (flows_needed says more)
BOUND_TOLERANCE = 0.25  # the bound may exceed the target by this share of it before a warning


@dataclass(frozen=True)
class Calibration:
    """One site's threshold for one model (the content of ``calibration.json``)."""

    site: str
    model_version: str
    model_sha256: str
    threshold: float
    target_alert_rate: float
    flows_used: int
    clean_quantile_threshold: float
    ceiling: float | None
    capped: bool
    expected_alert_rate: float
    reference_recall: float | None
    min_recall: float
    sources: tuple[str, ...]
    created: str
    # the split-conformal bound (module docstring); None in files written before it existed
    assured_alert_rate: float | None = None
    format: str = FORMAT
    version: int = FORMAT_VERSION

    def canonical_json(self) -> bytes:
        state = asdict(self)
        state["sources"] = list(self.sources)
        return json.dumps(state, sort_keys=True, indent=2).encode() + b"\n"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def write(self, model_dir: str | PathLike[str]) -> Path:
        """Write ``calibration.json`` atomically (a running worker never reads half a file)."""
        path = Path(model_dir) / CALIBRATION_FILE
        partial = path.with_name(f".{CALIBRATION_FILE}.{os.getpid()}.tmp")
        partial.write_bytes(self.canonical_json())
        os.replace(partial, path)
        return path

    @classmethod
    def read(cls, path: str | PathLike[str]) -> Calibration:
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise ArtifactError(f"{path}: unreadable calibration ({error})") from error
        return cls.parse(content, path)

    @classmethod
    def parse(cls, content: bytes, path: str | PathLike[str]) -> Calibration:
        """The calibration in ``content`` (the bytes of ``path``, named in errors)."""
        try:
            state = json.loads(content)
        except ValueError as error:
            raise ArtifactError(f"{path}: unreadable calibration ({error})") from error
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ArtifactError(f"{path}: not a stream-ids calibration")
        if state.get("version") not in READABLE_VERSIONS:
            raise ArtifactError(f"{path}: calibration version {state.get('version')!r} unknown")
        try:
            state["sources"] = tuple(state["sources"])
            calibration = cls(**state)
        except TypeError as error:
            raise ArtifactError(f"{path}: malformed calibration ({error})") from error
        if not (0.0 < calibration.threshold <= 1.0) or not math.isfinite(calibration.threshold):
            raise ArtifactError(f"{path}: threshold {calibration.threshold!r} outside (0, 1]")
        return calibration


def fit_threshold(
    clean_scores: np.ndarray,
    target: float = DEFAULT_TARGET,
    attack_scores: np.ndarray | None = None,
    min_recall: float = DEFAULT_MIN_RECALL,
) -> dict[str, Any]:
    """The threshold for ``target`` alert rate on ``clean_scores``, capped by the attack floor.

    Returns the threshold, the uncapped quantile, the ceiling (None without attack scores),
    whether it was capped, the alert rate it gives on ``clean_scores`` and the recall on
    ``attack_scores``.
    """
    # Scores are float32 in the worker: thresholds are float32 values too, so that a threshold
    # between two float32 scores cannot behave differently there than here.
    clean = np.asarray(clean_scores, dtype=np.float32)
    clean = clean[np.isfinite(clean)]
    if len(clean) < MIN_FLOWS:
        raise ConfigurationError(
            f"calibration needs at least {MIN_FLOWS} scorable flows of the site's traffic, "
            f"got {len(clean)}"
        )
    if not 0.0 < target < 1.0:
        raise ConfigurationError(f"target alert rate {target} must lie strictly between 0 and 1")
    # The smallest threshold with at most ``target`` of clean scores at or above it: just above
    # the k-th largest score, k = floor(target * n). Not the conformal quantile (one flow
    # fewer): on CSE-CIC-IDS2018's 1,144-flow half it put the threshold above the one clean
    # score of 0.99999+, over most attacks' scores, and recall fell from 82% to 2%
    # (python -m model.generalization, 17:10 UTC on 2026-11-30); the bound is reported instead
    # (assured_alert_rate).
    ordered = np.sort(clean)[::-1]
    allowed = math.floor(target * len(clean))
    above = np.nextafter(ordered[allowed], np.float32(np.inf))
    quantile = float(min(max(above, np.finfo(np.float32).tiny), np.float32(1.0)))
    ceiling: float | None = None
    recall: float | None = None
    threshold = quantile
    if attack_scores is not None and len(attack_scores):
        attacks = np.asarray(attack_scores, dtype=np.float32)
        attacks = attacks[np.isfinite(attacks)]
        # The largest threshold that keeps ``min_recall`` of the attacks at or above it.
        ceiling = float(np.sort(attacks)[math.floor((1.0 - min_recall) * len(attacks))])
        threshold = min(quantile, ceiling)
        recall = float(np.mean(attacks >= threshold))
    return {
        "threshold": threshold,
        "clean_quantile_threshold": quantile,
        "ceiling": ceiling,
        "capped": ceiling is not None and ceiling < quantile,
        "expected_alert_rate": float(np.mean(clean >= threshold)),
        "assured_alert_rate": assured_alert_rate(int(np.sum(clean >= threshold)), len(clean)),
        "reference_recall": recall,
    }


def assured_alert_rate(alerting: int, flows: int) -> float:
    """The split-conformal bound: ``alerting`` of ``flows`` clean flows at or above a threshold
    -> at most this chance, on average over calibrations, that a new flow like them reaches it."""
    return min(1.0, (alerting + 1) / (flows + 1))


def flows_needed(target: float, tolerance: float = BOUND_TOLERANCE) -> int:
    """The fewest clean flows from which the quantile's bound, ``(floor(target * n) + 1) /
    (n + 1)``, always stays within ``(1 + tolerance) * target``: n >= 1 / (tolerance * target)
    - (1 + tolerance) / tolerance."""
    needed = 1.0 / (tolerance * target) - (1.0 + tolerance) / tolerance
    return max(MIN_FLOWS, math.ceil(needed - 1e-9))


def vouches_for_target(calibration: Calibration) -> bool | None:
    """Whether the flows used vouch for the target within the tolerance (None: not recorded)."""
    if calibration.assured_alert_rate is None:
        return None
    limit = (1.0 + BOUND_TOLERANCE) * calibration.target_alert_rate
    return calibration.assured_alert_rate <= limit + 1e-12


def reference_attack_scores(
    scorer: Scorer, paths: Sequence[str | PathLike[str]] | None = None
) -> np.ndarray:
    """The attack floor's scores: the attack flows of the reference, scored by the worker's rules.

    ``paths``: labelled flow files (default: the embedded CICIDS2017 sample). The whole reference
    is scored (:func:`stream_ids.offline.score_frame`: an attack's window holds its host's earlier
    flows), then the attack flows the worker would score are kept. Used by ``stream-ids
    calibrate`` and ``model.generalization``.
    """
    from stream_ids.datasets import embedded_sample
    from stream_ids.loader import load_flows
    from stream_ids.offline import score_frame

    reference = load_flows(list(paths) if paths else [embedded_sample()])
    attacks = (reference["is_attack"] == 1).to_numpy()
    scored = score_frame(scorer, reference)
    return np.asarray(scored.score[attacks & scored.valid])


def make_calibration(
    *,
    site: str,
    model_version: str,
    model_sha256: str,
    clean_scores: np.ndarray,
    attack_scores: np.ndarray | None,
    target: float,
    min_recall: float,
    sources: list[str],
) -> Calibration:
    fitted = fit_threshold(clean_scores, target, attack_scores, min_recall)
    return Calibration(
        site=site,
        model_version=model_version,
        model_sha256=model_sha256,
        target_alert_rate=target,
        flows_used=int(np.isfinite(np.asarray(clean_scores, dtype=np.float64)).sum()),
        min_recall=min_recall,
        sources=tuple(sources),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **fitted,
    )


def check_model(calibration: Calibration, path: Path, model_sha256: str) -> Calibration:
    """``calibration`` if it was made for the model whose ``model.keras`` has ``model_sha256``."""
    if calibration.model_sha256 != model_sha256:
        raise ArtifactError(
            f"{path}: made for model {calibration.model_sha256[:16]}... "
            f"({calibration.model_version}), not this one ({model_sha256[:16]}...); "
            "run `stream-ids calibrate` again or remove the file"
        )
    return calibration


def applicable(model_dir: Path, model_sha256: str) -> Calibration | None:
    """The calibration beside a model, or None; refuses one made for another model."""
    path = model_dir / CALIBRATION_FILE
    if not path.is_file():
        return None
    return check_model(Calibration.read(path), path, model_sha256)


def describe_threshold(threshold: float, calibration: Calibration | None) -> str:
    """``0.9312 (site 'lab-a', target 0.100%)`` or ``0.5 (the model's own)`` for log lines."""
    if calibration is None:
        return f"{threshold:.6g} (the model's own)"
    capped = ", capped by the attack floor" if calibration.capped else ""
    return (
        f"{threshold:.6g} (site {calibration.site!r}, target "
        f"{calibration.target_alert_rate:.3%} alerts{capped})"
    )


@dataclass(frozen=True)
class CalibrationEvent:
    """What :meth:`CalibrationWatch.poll` saw: a new calibration in force, or a refused file."""

    changed: bool  # True: ``new`` replaces ``old``; False: the file was refused (``error``)
    old: Calibration | None
    new: Calibration | None
    error: str | None = None


class CalibrationWatch:
    """Polls ``calibration.json`` beside a model for a running worker.

    Cheap: one ``stat`` per poll; the file is read and hashed only when its mtime, size or
    inode changed, and an event is returned only when its content (sha256) did. A removed file
    means the model's own threshold; a file that cannot be read, or made for another model, is
    refused once per content, and the calibration in force stays.
    """

    def __init__(self, model_dir: Path, model_sha256: str, current: Calibration | None) -> None:
        self.path = Path(model_dir) / CALIBRATION_FILE
        self.model_sha256 = model_sha256
        self.current = current
        self._stat: tuple[int, int, int] | None = None  # (mtime_ns, size, inode); None: absent
        self._digest: str | None = None  # sha256 of the content last looked at; None: absent
        self._polled = False
        self._error: str | None = None  # the refusal last reported (not repeated each poll)

    def poll(self) -> CalibrationEvent | None:
        try:
            info = self.path.stat()
            signature: tuple[int, int, int] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except FileNotFoundError:
            signature = None
        except OSError as error:
            return self._refuse(None, f"{self.path}: cannot be read ({error})")
        if self._polled and signature == self._stat:
            return None
        self._polled = True
        self._stat = signature
        content: bytes | None = None
        if signature is not None:
            try:
                content = self.path.read_bytes()
            except FileNotFoundError:  # removed between stat and read
                self._stat = None
            except OSError as error:
                return self._refuse(None, f"{self.path}: cannot be read ({error})")
        self._error = None
        digest = None if content is None else hashlib.sha256(content).hexdigest()
        if digest == self._digest and digest is not None:
            return None
        self._digest = digest
        if content is None:
            new = None
        else:
            try:
                new = check_model(Calibration.parse(content, self.path), self.path,
                                  self.model_sha256)
            except ArtifactError as error:
                return self._refuse(digest, str(error))
        if new == self.current:
            return None
        old, self.current = self.current, new
        return CalibrationEvent(True, old, new)

    def _refuse(self, digest: str | None, error: str) -> CalibrationEvent | None:
        self._digest = digest
        if error == self._error:
            return None
        self._error = error
        return CalibrationEvent(False, self.current, self.current, error)
