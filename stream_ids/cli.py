"""The ``stream-ids`` console script.

Each subcommand lives in its own module under :mod:`stream_ids.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` (a callable taking the parsed
namespace and returning an exit code). Commands import their heavy dependencies (TensorFlow,
Faust) inside the handler so that ``stream-ids broker start`` stays fast.

Before a handler runs, :func:`main` imports faust without letting it read the command line
(:mod:`stream_ids.faust_argv`: ``--loop`` would otherwise pick an event loop) and, for the
commands that load a model, starts TensorFlow without its start-up chatter
(:mod:`stream_ids.quiet`; ``--verbose`` or ``STREAM_IDS_LOG_LEVEL=debug`` shows it). An error
of ours, or a Kafka client error, ends the command with one ``error:`` line and status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
from collections.abc import Sequence

from rich.console import Console

from stream_ids import __version__, commands, quiet
from stream_ids.errors import StreamIdsError

# Commands that load a Keras model: TensorFlow is started quietly before their handler runs
# (the worker does it itself, after checking for a broker).
KERAS_COMMANDS = frozenset({"train", "evaluate", "score", "calibrate"})


def version_text() -> str:
    """``stream-ids X, model V (DIR)``: the package and the model a worker would load."""
    from stream_ids.artifacts import model_dir_or_shipped, read_manifest
    from stream_ids.settings import get_settings

    try:
        model_dir = model_dir_or_shipped(get_settings().model_dir)
        manifest = read_manifest(model_dir)
        model = f"model {manifest['model_version']} ({model_dir})"
    except Exception as error:  # --version must answer even with a broken model folder
        model = f"model unknown ({error})"
    return f"stream-ids {__version__}, {model}"


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stream-ids",
        description="Streaming network-intrusion detection: CICFlowMeter flows through Kafka.",
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="show the version of stream-ids and of the model, and exit")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show library start-up logs (TensorFlow); same as "
                        "STREAM_IDS_LOG_LEVEL=debug")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def _kafka_error(error: BaseException) -> bool:
    kafka = sys.modules.get("confluent_kafka")
    return kafka is not None and isinstance(error, kafka.KafkaException)


def restore_interrupt() -> None:
    """Make Ctrl-C stop a command even when SIGINT was inherited as ignored.

    A shell without job control starts a background job (``stream-ids relay ... &``) with
    SIGINT ignored, and Python then never raises KeyboardInterrupt: the long-running commands
    that say "Ctrl-C stops it" could only be killed (this hung the documented-commands test in a
    CI run started from a background job). Such a job is in its own process group under job
    control anyway, so a terminal's Ctrl-C still does not reach it.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    restore_interrupt()
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.verbose:
        quiet.set_verbose()  # also for the processes a command starts (demo's worker)
    if not quiet.verbose():
        # TensorFlow's C++ logs below errors stay off; set before anything imports it
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    console = Console(stderr=True, soft_wrap=True)
    try:
        from stream_ids.faust_argv import import_faust

        import_faust()
        if arguments.command in KERAS_COMMANDS:
            quiet.start_tensorflow()
        return int(arguments.handler(arguments) or 0)
    except StreamIdsError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if not _kafka_error(error):
            raise
        # a broker that went away after the command's own check: one line, not a traceback
        console.print(f"[bold red]error:[/] Kafka: {error.args[0] if error.args else error} "
                      "(is the broker at STREAM_IDS_BOOTSTRAP_SERVERS up?)", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
