"""The ``stream-ids`` console script.

Each subcommand lives in its own module under :mod:`stream_ids.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` (a callable taking the parsed
namespace and returning an exit code). Commands import their heavy dependencies (TensorFlow,
Faust) inside the handler so that ``stream-ids broker start`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from rich.console import Console

from stream_ids import __version__, commands
from stream_ids.errors import StreamIdsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stream-ids",
        description="Streaming network-intrusion detection: CICFlowMeter flows through Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"stream-ids {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (oneDNN, missing CUDA) buries the CLI's own output;
    # errors still show. Set before any command imports TensorFlow.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return int(arguments.handler(arguments) or 0)
    except StreamIdsError as error:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
