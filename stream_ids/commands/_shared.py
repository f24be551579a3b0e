"""Helpers shared by several commands (the CLI skips ``_`` modules: this is no command).

Command modules import each other never, this module instead, so that each command reads
on its own and the CLI's discovery imports nothing twice.
"""

from __future__ import annotations

from typing import Any

# the windows and counts of a ``stats`` record (stream_ids.rolling), in display order
WINDOWS = ("tumbling_10s", "sliding_60s", "cumulative")
COUNTS = ("flows", "alerts", "tp", "fp", "tn", "fn")


def settings_with_bootstrap(bootstrap: str | None) -> Any:
    from stream_ids.settings import Settings, get_settings

    if bootstrap:
        return Settings(bootstrap_servers=bootstrap)
    return get_settings()


def flow_paths(given: list[str], console: Any) -> list[Any]:
    """The files of ``given`` (folders expanded), or the default data (said on ``console``)."""
    from stream_ids.datasets import default_flow_paths, describe_flow_paths
    from stream_ids.loader import expand_flow_paths

    if given:
        return expand_flow_paths(given)
    paths = default_flow_paths()
    console.print(f"no files given: reading {describe_flow_paths(paths)}", highlight=False)
    return paths


def combine(records: list[dict]) -> dict:
    """Sum the counts of several workers' records of one window; recompute the rates."""
    total: dict[str, Any] = {name: 0 for name in COUNTS}
    labelled = False
    for record in records:
        for name in COUNTS:
            if record.get(name) is not None:
                total[name] += record[name]
                labelled = labelled or name in ("tp", "fp", "tn", "fn")
    tp, fp, tn, fn = (total[name] for name in ("tp", "fp", "tn", "fn"))
    total["false_alarm_rate"] = fp / (fp + tn) if labelled and fp + tn else None
    total["precision"] = tp / (tp + fp) if labelled and tp + fp else None
    total["recall"] = tp / (tp + fn) if labelled and tp + fn else None
    labelled_n = tp + fp + tn + fn
    total["accuracy"] = (tp + tn) / labelled_n if labelled and labelled_n else None
    total["alert_rate"] = total["alerts"] / total["flows"] if total["flows"] else None
    if not labelled:
        for name in ("tp", "fp", "tn", "fn"):
            total[name] = None
    return total


def print_metrics(metrics: dict[str, Any], title: str = "metrics") -> None:
    from rich.console import Console
    from rich.table import Table

    from stream_ids.metrics import METRIC_KEYS

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    # The scalar metrics; the confusion counts and n follow as their own rows.
    for key in (name for name in METRIC_KEYS if name not in ("confusion", "n")):
        value = metrics.get(key)
        table.add_row(key, "null" if value is None else f"{value:.6f}")
    for key, value in metrics.get("confusion", {}).items():
        table.add_row(key, str(value))
    table.add_row("n", str(metrics.get("n")))
    if "threshold" in metrics:
        table.add_row("threshold", f"{metrics['threshold']:.6g}")
    Console().print(table)
