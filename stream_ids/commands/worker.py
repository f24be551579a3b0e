"""``stream-ids worker``: one Faust worker scoring the flows topic (start more to scale out)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a scoring worker (Faust agent; joins the consumer group of STREAM_IDS_APP_ID)",
    )
    parser.add_argument("--model-dir", help="model directory (default: STREAM_IDS_MODEL_DIR or "
                        "the shipped model)")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers")
    parser.add_argument("--loglevel", default="warning", help="Faust log level (default warning)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stream_ids import quiet
    from stream_ids.kafka_probe import require_broker
    from stream_ids.settings import get_settings

    if args.bootstrap:
        os.environ["STREAM_IDS_BOOTSTRAP_SERVERS"] = args.bootstrap
        get_settings.cache_clear()
    settings = get_settings()
    # Inputs first, cheapest first: the model files' hashes (no TensorFlow yet), then the
    # broker (one line when there is none), then the model itself.
    from stream_ids.artifacts import model_dir_or_shipped, verified_manifest

    verified_manifest(model_dir_or_shipped(args.model_dir or settings.model_dir))
    require_broker(settings)
    quiet.start_tensorflow()
    worker = make_worker(settings, model_dir=args.model_dir, loglevel=args.loglevel)
    worker.execute_from_commandline()
    return 0


def make_worker(settings: Any, model_dir: str | None = None, loglevel: str = "warning") -> Any:
    from faust.worker import Worker

    from stream_ids.agents import build_worker
    from stream_ids.scorer import Scorer, limit_model_threads

    log = logging.getLogger("stream_ids.worker")
    limit_model_threads(settings.model_threads)
    model = Scorer.load(model_dir or settings.model_dir)
    devices = _devices()
    metrics = None
    try:
        from stream_ids.observability import WorkerMetrics, start_metrics_server

        metrics = WorkerMetrics()
        start_metrics_server(settings.metrics_port)
    except (ImportError, OSError) as error:  # metrics are optional
        log.warning("Prometheus metrics disabled: %s", error)
    _declare_topics(settings)
    parts = build_worker(settings, model, metrics=metrics)
    from stream_ids.observability import watch_gc_pauses

    # from here on: the start's own collections (model load, warm-up) are expected and
    # then frozen (gc.freeze in the scoring agent)
    watch_gc_pauses()
    print(
        f"stream-ids worker {parts.stats.worker}: model {model.model_version} "
        f"(window {model.window}, threshold {model.threshold:.6g}"
        + (f", calibrated for site {model.calibration.site!r}" if model.calibration else "")
        + f") on {devices}; "
        f"{settings.topic_flows} -> {settings.topic_verdicts}/{settings.topic_alerts}, "
        f"group {settings.app_id}, broker {settings.bootstrap_servers}",
        flush=True,
    )
    worker = Worker(parts.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    if not sys.stdout.isatty():
        # Faust's start-up spinner writes cursor hide/show escapes even into a pipe or file
        worker.spinner = None
    return worker


def _declare_topics(settings: Any) -> None:
    """Create the topics with the configured partitions before Faust starts (Faust only
    declares the topics it consumes; the flows topic must exist with ``topic_partitions``)."""
    from stream_ids.kafka_admin import ensure_topic

    for topic in (settings.topic_flows, settings.topic_verdicts, settings.topic_alerts,
                  settings.topic_dead_letter):
        ensure_topic(settings, topic)
    ensure_topic(settings, settings.topic_stats, partitions=1)


def _devices() -> str:
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    except Exception:
        return "the Keras backend's default device"
    return f"GPU ({len(gpus)})" if gpus else "CPU"
