"""The one rule for numbers JSON cannot carry (NaN and the infinities), both directions.

JSON has no NaN or Infinity. A flow's features are written with NaN as ``null`` and the
infinities as the strings ``"Infinity"`` / ``"-Infinity"``; a reader also takes ``"NaN"`` for
NaN. Where a non-finite value is *allowed* is the validator's business
(:mod:`stream_ids.wire.validate`: only the four rate features, where CICFlowMeter divides by a
zero duration); this module only says how one is spelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stream_ids.schema import FEATURE_NAMES

# The spellings a reader accepts for non-finite numbers, and what they mean.
NON_FINITE_STRINGS: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf,
                                        "-Infinity": -math.inf}


def encode_number(value: float) -> float | str | None:
    """A number as JSON can carry it: itself if finite, ``None`` for NaN, else a string."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return None
    return "Infinity" if value > 0 else "-Infinity"


def decode_number(value: Any) -> Any:
    """The float a non-finite spelling stands for (``None`` is NaN); anything else unchanged."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        return NON_FINITE_STRINGS.get(value, value)
    return value


def encode_row(row: Sequence[float], finite: bool | None = None) -> list[Any]:
    """A row of numbers as JSON can carry it; ``finite=True`` skips the per-value check."""
    if finite or (finite is None and all(math.isfinite(value) for value in row)):
        return list(row)
    return [encode_number(value) for value in row]


def encode_features(row: Sequence[float], finite: bool | None = None) -> dict[str, Any]:
    """The schema-1 ``features`` object of a row in FEATURE_NAMES order."""
    return dict(zip(FEATURE_NAMES, encode_row(row, finite), strict=True))
