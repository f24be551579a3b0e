"""Where the shared CICIDS2017 sample rows live (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

from stream_ids.errors import ConfigurationError

_REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """``$STREAM_IDS_SHARED_DATA`` if set, else ``../shared/data`` beside the repository."""
    configured = os.environ.get("STREAM_IDS_SHARED_DATA")
    directory = Path(configured) if configured else _REPO_ROOT.parent / "shared" / "data"
    if not directory.is_dir():
        raise ConfigurationError(
            f"shared data folder {directory} not found; set STREAM_IDS_SHARED_DATA to the folder "
            "that holds cicids2017-improved/ and cicids2017-original/"
        )
    return directory


def improved_csvs() -> list[Path]:
    """The per-label samples of the corrected CICIDS2017 (91 columns)."""
    return sorted((shared_data_dir() / "cicids2017-improved").glob("*.csv"))
