"""Where flow data is found when a command is given no path.

Two places, larger first:

- the shared CICIDS2017 rows (never copied into the repository): ``$STREAM_IDS_SHARED_DATA``, or
  ``../shared/data`` beside a source checkout; its ``cicids2017-improved/`` holds 56k flows;
- the small sample shipped inside the package (``stream_ids/resources/sample/``, 5,651 flows of
  every label; provenance and licence in the README beside it), so that ``stream-ids demo``,
  ``replay`` and ``evaluate`` work from a bare clone or a wheel install.
"""

from __future__ import annotations

import os
from pathlib import Path

from stream_ids.errors import ConfigurationError

_REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = Path(__file__).resolve().parent / "resources" / "sample"
SAMPLE_FILE = "cicids2017-sample.csv.gz"


def shared_data_candidate() -> Path:
    """``$STREAM_IDS_SHARED_DATA`` if set, else ``../shared/data`` beside the repository."""
    configured = os.environ.get("STREAM_IDS_SHARED_DATA")
    return Path(configured) if configured else _REPO_ROOT.parent / "shared" / "data"


def shared_data_dir() -> Path:
    """The shared data folder; :class:`ConfigurationError` when it is not there."""
    directory = shared_data_candidate()
    if not directory.is_dir():
        raise ConfigurationError(
            f"shared data folder {directory} not found; set STREAM_IDS_SHARED_DATA to the folder "
            "that holds cicids2017-improved/ and cicids2017-original/"
        )
    return directory


def improved_csvs() -> list[Path]:
    """The per-label samples of the corrected CICIDS2017 (91 columns)."""
    return sorted((shared_data_dir() / "cicids2017-improved").glob("*.csv"))


def embedded_sample() -> Path:
    """The CICIDS2017 sample shipped with the package (gzip-compressed CSV, 91 columns)."""
    path = SAMPLE_DIR / SAMPLE_FILE
    if not path.is_file():
        raise ConfigurationError(
            f"the embedded sample {path} is missing from this installation; reinstall stream-ids "
            "or give flow files explicitly"
        )
    return path


def default_flow_paths() -> list[Path]:
    """The flow files a command reads when given none.

    The shared ``cicids2017-improved/*.csv`` when that folder exists and holds CSVs, else the
    embedded sample (one file).
    """
    improved = shared_data_candidate() / "cicids2017-improved"
    if improved.is_dir():
        found = sorted(improved.glob("*.csv"))
        if found:
            return found
    return [embedded_sample()]


def describe_flow_paths(paths: list[Path]) -> str:
    """One phrase naming where default paths come from (for a command's first line)."""
    if paths == [SAMPLE_DIR / SAMPLE_FILE]:
        return "the embedded CICIDS2017 sample (5,651 flows)"
    if len(paths) == 1:
        return str(paths[0])
    return f"{len(paths)} files in {paths[0].parent}"
