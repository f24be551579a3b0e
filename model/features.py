"""Feature sets for training: every feature, or the ones CICFlowMeter versions agree on.

The groups below are the features CICFlowMeter versions are known to write differently
(CICFlowMeter's and the corrected datasets' issue trackers; issue #16): dropping them all moved
a probe's recall at 1% false alarms on a held-out capture from 32% to 61% (docs/robustness.md,
``python -m model.robustness``).
"""

from __future__ import annotations

from stream_ids import schema

FEATURES: tuple[str, ...] = schema.FEATURE_NAMES

UNSTABLE_GROUPS: dict[str, tuple[str, ...]] = {
    "bulk": tuple(f for f in FEATURES if "bulk" in f),  # always 0 in old releases
    "subflow": tuple(f for f in FEATURES if f.startswith("subflow")),  # 0 or 1, or copies
    "psh_urg_direction": ("fwd_psh_flags", "bwd_psh_flags", "fwd_urg_flags", "bwd_urg_flags"),
    "init_window": ("init_win_bytes_fwd", "init_win_bytes_bwd"),  # last vs first; -1 vs 0
    "active_idle": tuple(f for f in FEATURES if f.startswith(("active_", "idle_"))),
    "header_length": ("fwd_header_length", "bwd_header_length"),  # duplicated, overflowed
    "segment_size_min": ("fwd_seg_size_min",),
    "flag_counts": tuple(f for f in FEATURES if f.endswith("_flag_count")),
}
_UNSTABLE = {name for group in UNSTABLE_GROUPS.values() for name in group}
STABLE_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f not in _UNSTABLE)

FEATURE_SETS: dict[str, tuple[str, ...]] = {"all": FEATURES, "stable": STABLE_FEATURES}
