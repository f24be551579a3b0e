"""``stream-ids calibrate``: set a site's alert threshold from its own traffic.

Reads the site's traffic believed clean (flows labelled as attacks are left out) from flow files
or folders, or from the ``flows`` topic (``--from-topic``: up to ``--limit`` flows from its
earliest offset, decoded by the worker's own validation), scores it by the worker's rules, and
writes ``calibration.json`` beside the model: the threshold at which about ``--target`` of that
traffic alerts, capped so that ``--min-recall`` of known attack flows (the embedded CICIDS2017
sample's, or ``--reference``) still alert. A worker started with that model directory uses it,
and a running one picks it up within seconds (see :mod:`stream_ids.calibration`).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stream_ids.calibration import (
    DEFAULT_MIN_RECALL,
    DEFAULT_TARGET,
    flows_needed,
    vouches_for_target,
)

if TYPE_CHECKING:
    import pandas as pd

    from stream_ids.calibration import Calibration
    from stream_ids.scorer import Scorer
    from stream_ids.settings import Settings
    from stream_ids.wire import FlowColumns

DEFAULT_TOPIC_TIMEOUT_S = 60.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="set a site's alert threshold from its own (clean) traffic: calibration.json",
        description="Score a site's own flows (believed clean), from files or from the flows "
        "topic, and write calibration.json beside the model: the threshold for a target alert "
        "rate, capped so that known attacks still alert. Running workers pick it up.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="flow files (.csv, .csv.gz) or folders of the site's traffic")
    parser.add_argument("--from-topic", nargs="?", const="", default=None, metavar="TOPIC",
                        help="read the site's flows from Kafka instead of files: TOPIC, or the "
                        "flows topic (STREAM_IDS_TOPIC_FLOWS) when omitted; from its earliest "
                        "offset, with a consumer group of its own that commits nothing")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="with --from-topic: flows to read (required)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TOPIC_TIMEOUT_S, metavar="S",
                        help="with --from-topic: stop reading after S seconds even if fewer "
                        f"than N flows arrived (default {DEFAULT_TOPIC_TIMEOUT_S:g})")
    parser.add_argument("--bootstrap", metavar="HOST:PORT",
                        help="with --from-topic: Kafka bootstrap servers")
    parser.add_argument("--site", required=True, help="a name for the site (kept in the file)")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET, metavar="RATE",
                        help=f"alert rate wanted on such traffic (default {DEFAULT_TARGET})")
    parser.add_argument("--min-recall", type=float, default=DEFAULT_MIN_RECALL, metavar="R",
                        help="share of the reference attack flows that must still alert "
                        f"(default {DEFAULT_MIN_RECALL})")
    parser.add_argument("--reference", nargs="+", default=None, metavar="PATH",
                        help="labelled flows whose attacks set the ceiling (default: the "
                        "embedded CICIDS2017 sample)")
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="model directory to calibrate (default: the shipped model); "
                        "calibration.json is written there")
    parser.set_defaults(handler=run)


@dataclass
class TopicFlows:
    """What :func:`read_topic_flows` read: the valid flows and the count of invalid ones."""

    topic: str
    columns: FlowColumns
    messages: int = 0
    invalid: Counter[str] = field(default_factory=Counter)  # reason code -> flows
    timed_out: bool = False

    @property
    def flows_read(self) -> int:
        return len(self.columns) + sum(self.invalid.values())


def read_topic_flows(
    settings: Settings, topic: str, limit: int, timeout_s: float
) -> TopicFlows:
    """Up to ``limit`` flows of ``topic`` from its earliest offsets, within ``timeout_s``.

    Messages are validated as the scoring agent does (:func:`stream_ids.wire.parse_columns`,
    every schema, the range rules included); an invalid flow is skipped and counted by reason.
    A micro-batch message counts as its flows; flows of it past ``limit`` are left out. Reads
    with a throw-away consumer group that never commits (:mod:`stream_ids.topic_reader`).
    """
    import numpy as np

    from stream_ids.topic_reader import read_topic
    from stream_ids.wire import FlowColumns, parse_columns

    parts: list[FlowColumns] = []
    result = TopicFlows(topic, FlowColumns.empty())
    read = 0
    deadline = time.monotonic() + timeout_s
    for key, value in read_topic(settings, topic, follow=True, decode=False, deadline=deadline):
        result.messages += 1
        columns, rejected = parse_columns(value, key)
        room = limit - read
        rejected = [item for item in rejected if item[0] < room]
        if columns.element and max(columns.element) >= room:
            columns = columns.select(np.asarray(columns.element) < room)
        for _element, error, _raw in rejected:
            result.invalid[error.reason] += 1
        if len(columns):
            parts.append(columns)
        read += len(columns) + len(rejected)
        if read >= limit:
            break
    else:
        result.timed_out = True
    result.columns = FlowColumns.concat(parts)
    return result


def columns_frame(columns: FlowColumns) -> pd.DataFrame:
    """Validated streamed flows as a canonical frame (:data:`stream_ids.loader.OUTPUT_COLUMNS`):
    identifiers, label and ``is_attack`` where the flows carry a label, float64 features."""
    import numpy as np
    import pandas as pd

    from stream_ids import schema
    from stream_ids.loader import OUTPUT_COLUMNS, label_classes

    def numbers(values: list[Any]) -> np.ndarray:
        return np.array([np.nan if value is None else value for value in values], np.float64)

    labels = pd.Series(columns.label, dtype="object")
    data: dict[str, Any] = {
        "flow_id": columns.flow_id,
        "src_ip": columns.src_ip,
        "dst_ip": columns.dst_ip,
        "src_port": numbers(columns.src_port),
        "dst_port": numbers(columns.dst_port),
        "protocol": numbers(columns.protocol),
        "timestamp": np.asarray(columns.timestamp, dtype=np.float64),
        "label": labels,
        "is_attack": label_classes(labels),
    }
    values = columns.values.reshape(len(columns), len(schema.FEATURE_NAMES))
    for index, name in enumerate(schema.FEATURE_NAMES):
        data[name] = values[:, index]
    return pd.DataFrame({name: data[name] for name in OUTPUT_COLUMNS})


def calibrate_frame(
    scorer: Scorer,
    site: pd.DataFrame,
    *,
    site_name: str,
    target: float,
    min_recall: float,
    reference: list[str] | None,
    sources: list[str],
) -> tuple[Calibration, int]:
    """The calibration of ``scorer`` on a canonical frame of a site's flows (files or topic).

    Flows labelled as attacks are left out; returns the calibration and how many were.
    """
    from stream_ids.artifacts import model_sha256
    from stream_ids.calibration import make_calibration, reference_attack_scores
    from stream_ids.offline import score_frame

    clean = (site["is_attack"] != 1).to_numpy()
    site_scores = score_frame(scorer, site)
    calibration = make_calibration(
        site=site_name,
        model_version=scorer.model_version,
        model_sha256=model_sha256(scorer.manifest),
        clean_scores=site_scores.score[clean & site_scores.valid],
        attack_scores=reference_attack_scores(scorer, reference),
        target=target,
        min_recall=min_recall,
        sources=sources,
    )
    return calibration, int((~clean).sum())


def _settings(bootstrap: str | None) -> Settings:
    from stream_ids.settings import Settings, get_settings

    return Settings(bootstrap_servers=bootstrap) if bootstrap else get_settings()


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stream_ids.calibration import CALIBRATION_FILE
    from stream_ids.errors import ConfigurationError
    from stream_ids.scorer import Scorer

    console = Console(stderr=True, soft_wrap=True)  # whole lines, for logs and scripts
    if args.from_topic is None and not args.paths:
        raise ConfigurationError("give flow files or folders, or --from-topic [TOPIC] --limit N")
    if args.from_topic is not None and args.paths:
        raise ConfigurationError("give flow files or --from-topic, not both")
    if args.from_topic is not None:
        from stream_ids.kafka_probe import require_broker

        if args.limit is None or args.limit < 1:
            raise ConfigurationError("--from-topic needs --limit N (flows to read, N >= 1)")
        if args.timeout <= 0:
            raise ConfigurationError("--timeout must be positive")
        settings = _settings(args.bootstrap)
        require_broker(settings)  # before the model loads: one line when there is no broker
        topic = args.from_topic or settings.topic_flows
        read = read_topic_flows(settings, topic, args.limit, args.timeout)
        invalid = ", ".join(f"{reason} {n}" for reason, n in read.invalid.most_common())
        console.print(
            f"read {read.flows_read} flows ({read.messages} messages) of topic {topic!r}"
            + (f"; {sum(read.invalid.values())} invalid skipped ({invalid})" if invalid else "")
            + (f"; stopped after {args.timeout:g} s, before {args.limit}" if read.timed_out
               else ""),
            highlight=False,
        )
        frame = columns_frame(read.columns)
        sources = [f"kafka:{topic} (earliest offsets, {read.flows_read} flows)"]
        scorer = Scorer.load(args.model, calibrated=False)
    else:
        from stream_ids.loader import expand_flow_paths, load_flows

        scorer = Scorer.load(args.model, calibrated=False)
        files = expand_flow_paths(args.paths)
        frame = load_flows(files)
        sources = [str(path) for path in files]
    calibration, attack_labelled = calibrate_frame(
        scorer,
        frame,
        site_name=args.site,
        target=args.target,
        min_recall=args.min_recall,
        reference=args.reference,
        sources=sources,
    )
    path = calibration.write(scorer.model_dir)
    recall = (
        f"{calibration.reference_recall:.2%}" if calibration.reference_recall is not None else "-"
    )
    console.print(
        f"{calibration.flows_used} clean flows of {args.site!r} "
        f"({attack_labelled} attack-labelled left out): threshold "
        f"{calibration.threshold:.6g} (model's own {scorer.model_threshold:.3g}) for "
        f"{calibration.target_alert_rate:.3%} alerts -> {calibration.expected_alert_rate:.3%} "
        f"on these flows; reference attacks still alerting {recall}"
        + (" [capped by the attack floor]" if calibration.capped else "")
        + f"\nwrote {path} ({CALIBRATION_FILE}, sha256 {calibration.sha256[:16]}...)",
        highlight=False,
    )
    console.print(assurance_line(calibration), highlight=False)
    return 0


def assurance_line(calibration: Calibration) -> str:
    """What the flows used can vouch for on the site's later clean traffic (calibration module)."""
    assured = calibration.assured_alert_rate
    if assured is None:
        return "no assured alert rate (calibration written before it was recorded)"
    line = (
        f"{calibration.flows_used:,} flows vouch for at most {assured:.3%} alerts on later clean "
        "traffic like them (on average)"
    )
    if vouches_for_target(calibration):
        return line
    target = f"{calibration.target_alert_rate:.3%}"
    if calibration.capped:
        return (
            f"[yellow]warning[/yellow]: {line}, not the {target} target: the attack floor set "
            "the threshold, because this traffic scores as high as known attacks"
        )
    return (
        f"[yellow]warning[/yellow]: {line}, not the {target} target: that needs at least "
        f"{flows_needed(calibration.target_alert_rate):,} clean flows"
    )
