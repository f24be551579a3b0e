"""``stream-ids calibrate``: set a site's alert threshold from its own traffic.

Reads flow files of the site's traffic believed clean (flows labelled as attacks are left out),
scores them by the worker's rules, and writes ``calibration.json`` beside the model: the
threshold at which about ``--target`` of that traffic alerts, capped so that ``--min-recall`` of
known attack flows (the embedded CICIDS2017 sample's, or ``--reference``) still alert. A worker
started with that model directory uses it (see :mod:`stream_ids.calibration`).
"""

from __future__ import annotations

import argparse

from stream_ids.calibration import DEFAULT_MIN_RECALL, DEFAULT_TARGET


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="set a site's alert threshold from its own (clean) traffic: calibration.json",
        description="Score a site's own flows (believed clean) and write calibration.json "
        "beside the model: the threshold for a target alert rate, capped so that known "
        "attacks still alert.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="flow files (.csv, .csv.gz) or folders of the site's traffic")
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


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stream_ids.calibration import CALIBRATION_FILE, make_calibration
    from stream_ids.datasets import embedded_sample
    from stream_ids.loader import expand_flow_paths, load_flows
    from stream_ids.offline import score_frame
    from stream_ids.scorer import MODEL_FILE, Scorer

    console = Console(stderr=True)
    scorer = Scorer.load(args.model, calibrated=False)
    files = expand_flow_paths(args.paths)
    site = load_flows(files)
    clean = (site["is_attack"] != 1).to_numpy()
    site_scores = score_frame(scorer, site)
    reference = load_flows(args.reference if args.reference else [embedded_sample()])
    attacks = (reference["is_attack"] == 1).to_numpy()
    reference_scores = score_frame(scorer, reference)
    calibration = make_calibration(
        site=args.site,
        model_version=scorer.model_version,
        model_sha256=scorer.manifest["sha256"][MODEL_FILE],
        clean_scores=site_scores.score[clean & site_scores.valid],
        attack_scores=reference_scores.score[attacks & reference_scores.valid],
        target=args.target,
        min_recall=args.min_recall,
        sources=[str(path) for path in files],
    )
    path = calibration.write(scorer.model_dir)
    console.print(
        f"{calibration.flows_used} clean flows of {args.site!r} "
        f"({int((~clean).sum())} attack-labelled left out): threshold "
        f"{calibration.threshold:.6g} (model's own {scorer.model_threshold:.3g}) for "
        f"{calibration.target_alert_rate:.3%} alerts -> {calibration.expected_alert_rate:.3%} "
        f"on these flows; reference attacks still alerting "
        f"{calibration.reference_recall:.2%}"
        + (" [capped by the attack floor]" if calibration.capped else "")
        + f"\nwrote {path} ({CALIBRATION_FILE}, sha256 {calibration.sha256[:16]}...)",
        highlight=False,
    )
    return 0
