"""Recalibration without a restart: a timer that watches ``calibration.json`` beside the model.

Every :data:`POLL_S` seconds the worker ``stat``s the file (:class:`stream_ids.calibration.
CalibrationWatch`: it is read and hashed only when it changed). A new or changed calibration made
for this model is applied to the scorer and to the threshold the scoring agent judges with
(:attr:`stream_ids.agents.scoring.BatchScorer.threshold`); a removed one puts the model's own
threshold back; one made for another model, or unreadable, is refused with one log line and the
threshold in force stays. Each change is logged once (old -> new threshold, site).

Threads: the timer runs on the event loop, where :meth:`BatchScorer.publish` reads the threshold
once per published chunk (every verdict carries the threshold it was judged with); the scoring
thread never reads it. Nothing here is on the per-flow path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from stream_ids.calibration import CalibrationEvent, CalibrationWatch, describe_threshold
from stream_ids.rolling import RollingStats

log = logging.getLogger(__name__)

POLL_S = 2.0


def watch_of(model: Any) -> CalibrationWatch | None:
    """The watch of a loaded :class:`~stream_ids.scorer.Scorer` (None: not a model directory)."""
    from stream_ids.artifacts import MODEL_FILE

    model_dir = getattr(model, "model_dir", None)
    manifest = getattr(model, "manifest", None)
    if model_dir is None or not isinstance(manifest, dict):
        return None
    digest = manifest.get("sha256", {}).get(MODEL_FILE)
    if not isinstance(digest, str):
        return None
    return CalibrationWatch(Path(model_dir), digest, getattr(model, "calibration", None))


def apply_event(event: CalibrationEvent, model: Any, scorer: Any, stats: RollingStats) -> None:
    """Apply a change to ``model`` (the Scorer) and ``scorer`` (the BatchScorer); log it."""
    old_threshold = float(scorer.threshold)
    if not event.changed:
        log.warning(
            "calibration refused, threshold stays %s: %s",
            describe_threshold(old_threshold, event.old),
            event.error,
        )
        return
    model.apply_calibration(event.new)
    scorer.threshold = float(model.threshold)
    stats.set_threshold(scorer.threshold, event.new)
    what = "removed" if event.new is None else "applied" if event.old is None else "changed"
    log.warning(
        "calibration %s: threshold %s -> %s",
        what,
        describe_threshold(old_threshold, event.old),
        describe_threshold(scorer.threshold, event.new),
    )


def register_calibration_watch(
    app: Any, model: Any, scorer: Any, stats: RollingStats, interval_s: float = POLL_S
) -> CalibrationWatch | None:
    """A Faust timer polling ``calibration.json`` beside ``model`` (None: nothing to watch)."""
    watch = watch_of(model)
    if watch is None:
        return None

    async def watch_calibration() -> None:
        try:
            event = watch.poll()
        except Exception:  # a calibration problem must never stop the worker
            log.exception("calibration watch failed; threshold stays %s", scorer.threshold)
            return
        if event is not None:
            apply_event(event, model, scorer, stats)

    app.timer(interval=interval_s, name="stream_ids.watch_calibration")(watch_calibration)
    return watch
