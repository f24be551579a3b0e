"""``stream-ids train``: fit the CNN-LSTM and write a model directory (see :mod:`model.train`)."""

from __future__ import annotations

import argparse
import shlex


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train the CNN-LSTM on CICFlowMeter CSVs")
    parser.add_argument(
        "--data", nargs="+", required=True, metavar="PATH", help="CSV files or folders"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    parser.add_argument(
        "--window", type=int, default=8, metavar="T", help="flows per host window (1 = per flow)"
    )
    parser.add_argument("--split", choices=("random", "time"), default="random")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument(
        "--grid", action="store_true", help="small grid over lr, batch size, filters"
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--filters", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--lstm-units", type=int, default=64)
    parser.add_argument(
        "--dense-units", type=int, default=64, help="per-flow embedding width (cached per flow)"
    )
    parser.add_argument("--no-log1p", action="store_true", help="plain min-max (no signed log1p)")
    parser.add_argument(
        "--protocol-mask",
        type=float,
        default=0.1,
        help="fraction of training windows with protocol unknown",
    )
    parser.add_argument(
        "--tune-threshold",
        action="store_true",
        help="pick the threshold on the validation split (default 0.5)",
    )
    parser.add_argument(
        "--benign", nargs="+", default=[], metavar="PATH",
        help="flow files or folders whose flows are all benign (e.g. a site's own captures)",
    )
    parser.add_argument(
        "--benign-weight", type=float, default=1.0, metavar="W",
        help="each --benign flow weighs W dataset flows (default 1)",
    )
    parser.add_argument(
        "--features", choices=("all", "stable"), default="all",
        help="all 76 features, or the ones CICFlowMeter versions agree on (docs/robustness.md)",
    )
    parser.add_argument(
        "--balance-sources", action="store_true",
        help="every source folder weighs the same, and within it benign and attack",
    )
    parser.add_argument(
        "--augment-extractor", nargs="+", default=[], metavar="LAYOUT",
        choices=("python-cicflowmeter", "java-versions"),
        help="also train on every flow as this extractor (or another Java CICFlowMeter "
        "release) writes it (model/extractors.py)",
    )
    parser.add_argument(
        "--augment-timescale", type=float, default=1.0, metavar="F",
        help="run each augmented copy's hosts F times faster to F times slower (log-uniform, "
        "per host): times scaled, per-second rates inversely (default 1: off)",
    )
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rich.console import Console

    from model.train import Hyper, TrainConfig, train
    from stream_ids.loader import expand_flow_paths

    console = Console(stderr=True)
    config = TrainConfig(
        data=[str(p) for p in expand_flow_paths(args.data)],
        out=args.out,
        window=args.window,
        split=args.split,
        seed=args.seed,
        epochs=args.epochs,
        patience=args.patience,
        grid=args.grid,
        log1p=not args.no_log1p,
        protocol_mask_fraction=args.protocol_mask,
        tune_threshold=args.tune_threshold,
        features=args.features,
        benign=[str(p) for p in expand_flow_paths(args.benign)] if args.benign else [],
        balance_sources=args.balance_sources,
        benign_weight=args.benign_weight,
        augment_extractors=list(args.augment_extractor),
        augment_timescale=args.augment_timescale,
        verbose=0 if args.quiet else 2,
        hyper=Hyper(
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
            filters=tuple(args.filters),
            lstm_units=args.lstm_units,
            dense_units=args.dense_units,
        ),
        command="stream-ids " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    with console.status("training..."):
        metrics = train(config, log=lambda message: console.print(message, highlight=False))
    from stream_ids.commands._shared import print_metrics

    print_metrics(metrics, title=f"test split ({args.split})")
    console.print(json.dumps({k: metrics[k] for k in ("accuracy", "f1", "false_alarm_rate")}))
    return 0
