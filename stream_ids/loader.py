"""Read CICFlowMeter CSVs of every published layout into the canonical schema.

Layouts (see :func:`detect_layout`):

``cicids2017-trafficlabelling``
    The original CICIDS2017 *TrafficLabelling* files: 85 columns, `` Source IP``, leading spaces
    in headers, ``Fwd Header Length`` twice (the second copy is ignored), latin-1 bytes (``\\x96``)
    in the web-attack labels, minute timestamps ``7/7/2017 3:56`` (day/month/year) in local time
    (UTC-3) and *without* AM/PM.
``cicids2017-machinelearningcve``
    The original *MachineLearningCVE* files: 79 columns, no flow id, no IPs, no source port, no
    protocol, no timestamp. Those columns come out as missing values.
``cicids2017-improved``
    The corrected CICIDS2017 of Engelen et al.: 91 columns, ``Src IP``, microsecond timestamps in
    UTC, ``Attempted Category`` (a flow with a category other than -1 is an *attempted* attack
    and counts as benign).
``cicflowmeter-abbreviated``
    Today's Java CICFlowMeter and CSE-CIC-IDS2018 (``Dst Port``, ``Tot Fwd Pkts``, labels
    ``Benign`` / ``FTP-BruteForce``), timestamps ``14/02/2018 08:31:01`` (24 h, or with AM/PM).
``python-cicflowmeter``
    The snake_case headers of the PyPI ``cicflowmeter`` package.

Timestamp rule: every timestamp becomes float epoch seconds **UTC**. ISO timestamps (the corrected
set) are UTC already. ``d/m/Y H:M[:S] [AM|PM]`` timestamps honour AM/PM when present. The original
CICIDS2017 files have no AM/PM and were captured 8:00-17:59 local time, so an hour 1..7 is read as
13..19 (PM) and 8..12 as written; CICIDS2017 local time is UTC-3, so 3 h are added. Other layouts'
slash timestamps are taken as UTC as written (the capture zone is not recorded in the file).

Labels: any label other than ``benign`` (case-insensitive) is an attack (``is_attack`` 1); no
label column gives ``label`` missing and ``is_attack`` -1. The latin-1 byte ``\\x96`` (an en dash in
cp1252) and a UTF-8 replacement character are both normalised to ``-``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from stream_ids import schema
from stream_ids.errors import SchemaError

PathArg = str | PathLike[str]

LAYOUTS = (
    "cicids2017-trafficlabelling",
    "cicids2017-machinelearningcve",
    "cicids2017-improved",
    "cicflowmeter-abbreviated",
    "python-cicflowmeter",
    "unknown",
)

# Output column order: identifiers, ground truth, features.
OUTPUT_COLUMNS: tuple[str, ...] = (
    *schema.IDENTIFIER_NAMES,
    "label",
    "is_attack",
    *schema.FEATURE_NAMES,
)
_STRING_IDENTIFIERS = ("flow_id", "src_ip", "dst_ip")
_CICIDS2017_UTC_OFFSET_S = 3 * 3600.0
_SLASH_TIMESTAMP = re.compile(
    r"^\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*([AaPp][Mm])?\s*$"
)


def _read_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline()
    if not first:
        raise SchemaError(f"{path}: empty file (no header line)")
    text = first.decode("latin-1").lstrip("\ufeff").lstrip("ï»¿")
    return next(csv.reader(io.StringIO(text)))


def detect_layout(header: Iterable[str]) -> str:
    """Name the layout of a CSV header (one of :data:`LAYOUTS`)."""
    columns = list(header)
    keys = {schema.normalize_header(column) for column in columns}
    if "attemptedcategory" in keys:
        return "cicids2017-improved"
    if "totfwdpkts" in keys:
        if any("_" in column and column == column.lower() for column in columns):
            return "python-cicflowmeter"
        return "cicflowmeter-abbreviated"
    if keys & {"totalfwdpackets", "totalfwdpacket"}:
        if "sourceip" in keys or "srcip" in keys:
            return "cicids2017-trafficlabelling"
        return "cicids2017-machinelearningcve"
    return "unknown"


def _column_plan(header: list[str]) -> dict[int, str]:
    """Position -> canonical name for the columns we keep (first occurrence wins)."""
    plan: dict[int, str] = {}
    seen: set[str] = set()
    for position, column in enumerate(header):
        name = schema.canonical_name(column)
        if name is None or name in seen:
            continue  # unknown column, or a repeated one (the 85-column Fwd Header Length)
        seen.add(name)
        plan[position] = name
    return plan


def _check_required(path: Path, plan: dict[int, str], layout: str) -> None:
    present = set(plan.values())
    missing = [name for name in schema.FEATURE_NAMES if name not in present]
    if missing:
        shown = ", ".join(missing[:12]) + (
            f", ... ({len(missing)} in all)" if len(missing) > 12 else ""
        )
        raise SchemaError(
            f"{path}: layout {layout!r} lacks {len(missing)} of the {len(schema.FEATURE_NAMES)} "
            f"required feature columns: {shown}"
        )


def _dtypes(plan: dict[int, str]) -> dict[int, object]:
    dtypes: dict[int, object] = {}
    for position, name in plan.items():
        if name in schema.FEATURE_ALIASES or name in (
            "src_port",
            "dst_port",
            "protocol",
            "attempted_category",
        ):
            dtypes[position] = np.float64
        else:
            dtypes[position] = object
    return dtypes


def _parse_slash_timestamps(values: np.ndarray, *, cicids2017_local: bool) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            continue
        match = _SLASH_TIMESTAMP.match(value)
        if match is None:
            continue
        day, month, year, hour, minute, second, fraction, ampm = match.groups()
        year_i = int(year) + (2000 if len(year) == 2 else 0)
        hour_i = int(hour)
        if ampm:
            hour_i = hour_i % 12 + (12 if ampm.lower() == "pm" else 0)
        elif cicids2017_local and 1 <= hour_i <= 7:
            hour_i += 12  # captured 8:00-17:59: an hour 1..7 without AM/PM is afternoon
        try:
            stamp = pd.Timestamp(
                year_i, int(month), int(day), hour_i, int(minute), int(second or 0)
            )
        except ValueError:
            continue
        seconds = stamp.value / 1e9 + (float("0." + fraction) if fraction else 0.0)
        out[index] = seconds + (_CICIDS2017_UTC_OFFSET_S if cicids2017_local else 0.0)
    return out


def parse_timestamps(series: pd.Series, layout: str) -> np.ndarray:
    """Float epoch seconds UTC (NaN where unparseable); parses each distinct value once."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    parsed = np.full(len(uniques), np.nan)
    if len(uniques):
        iso = np.array([isinstance(v, str) and len(v) > 4 and v[4] == "-" for v in uniques])
        if iso.any():
            stamps = pd.to_datetime(
                pd.Series(uniques[iso]), format="ISO8601", utc=True, errors="coerce"
            )
            epoch = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
            parsed[iso] = epoch.to_numpy(dtype=np.float64, na_value=np.nan)
        if (~iso).any():
            parsed[~iso] = _parse_slash_timestamps(
                uniques[~iso], cicids2017_local=layout.startswith("cicids2017")
            )
    result = np.full(len(codes), np.nan)
    valid = codes >= 0
    result[valid] = parsed[codes[valid]]
    return result


def normalize_labels(series: pd.Series) -> pd.Series:
    """Strip, and turn the latin-1 ``\\x96`` / replacement character into ``-``."""
    text = series.astype("str")
    text = text.str.replace("\x96", "-", regex=False).str.replace("\ufffd", "-", regex=False)
    text = text.str.replace("â\x80\x93", "-", regex=False).str.replace("\u2013", "-", regex=False)
    return text.str.strip()


def _finish_chunk(chunk: pd.DataFrame, layout: str, dtype: type) -> pd.DataFrame:
    n = len(chunk)
    features = [name for name in schema.FEATURE_NAMES]
    # The TrafficLabelling files carry runs of empty lines (",,,,"): drop rows without features.
    empty = chunk[features].isna().all(axis=1).to_numpy()
    if empty.any():
        chunk = chunk.loc[~empty]
        n = len(chunk)
    out: dict[str, object] = {}
    for name in _STRING_IDENTIFIERS:
        if name in chunk:
            out[name] = chunk[name].astype("str").str.strip().where(chunk[name].notna())
        else:
            out[name] = pd.Series([None] * n, index=chunk.index, dtype="str")
    for name in ("src_port", "dst_port", "protocol"):
        out[name] = chunk[name].astype(np.float64) if name in chunk else np.full(n, np.nan)
    out["timestamp"] = (
        parse_timestamps(chunk["timestamp"], layout) if "timestamp" in chunk else np.full(n, np.nan)
    )
    if "label" in chunk:
        labels = normalize_labels(chunk["label"])
        is_attack = (labels.str.lower() != "benign").to_numpy().astype(np.int8)
        if "attempted_category" in chunk:
            attempted = chunk["attempted_category"].fillna(-1).to_numpy() != -1
            is_attack[attempted] = 0
        out["label"] = labels
        out["is_attack"] = is_attack
    else:
        out["label"] = pd.Series([None] * n, index=chunk.index, dtype="str")
        out["is_attack"] = np.full(n, -1, dtype=np.int8)
    for name in features:
        out[name] = chunk[name].to_numpy(dtype=dtype)
    return pd.DataFrame({name: out[name] for name in OUTPUT_COLUMNS}, index=chunk.index)


def iter_flow_frames(
    paths: PathArg | Iterable[PathArg],
    chunksize: int = 200_000,
    *,
    dtype: type = np.float64,
) -> Iterator[pd.DataFrame]:
    """Yield canonical DataFrames, ``chunksize`` rows at a time, file after file.

    Columns: :data:`OUTPUT_COLUMNS` (identifiers missing in a layout are NaN/None). Features are
    ``dtype`` (float64 by default) with Infinity/NaN preserved (the transform owns that rule).
    Raises :class:`SchemaError` naming the missing columns for a file that lacks a feature.
    """
    path_list = [paths] if isinstance(paths, str | PathLike) else list(paths)
    for raw in path_list:
        path = Path(raw)
        if not path.is_file():
            raise SchemaError(f"{path}: no such file")
        header = _read_header(path)
        layout = detect_layout(header)
        plan = _column_plan(header)
        _check_required(path, plan, layout)
        reader = pd.read_csv(
            path,
            header=None,
            skiprows=1,
            usecols=list(plan),
            dtype=_dtypes(plan),
            encoding="latin-1",
            chunksize=chunksize,
            skipinitialspace=True,
            na_values=["", "NaN", "nan"],
            keep_default_na=False,
            low_memory=True,
        )
        for chunk in reader:
            chunk.columns = [plan[position] for position in chunk.columns]
            yield _finish_chunk(chunk, layout, dtype)


def load_flows(
    paths: PathArg | Iterable[PathArg],
    *,
    dtype: type = np.float32,
    chunksize: int = 200_000,
) -> pd.DataFrame:
    """Every flow of ``paths`` in one canonical DataFrame (features ``dtype``: float32 default)."""
    frames = list(iter_flow_frames(paths, chunksize, dtype=dtype))
    if not frames:
        return pd.DataFrame({name: [] for name in OUTPUT_COLUMNS})
    frame = pd.concat(frames, ignore_index=True, copy=False) if len(frames) > 1 else frames[0]
    return frame.reset_index(drop=True)


def drop_exact_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop rows identical in every canonical column (identifiers, label and features)."""
    duplicated = frame.duplicated(keep="first").to_numpy()
    count = int(duplicated.sum())
    if count:
        frame = frame.loc[~duplicated].reset_index(drop=True)
    return frame, count


def count_feature_duplicates(frame: pd.DataFrame) -> int:
    """Rows repeating an earlier row's features, protocol and label (random-split leakage)."""
    columns = [*schema.FEATURE_NAMES, "protocol", "is_attack"]
    return int(frame.duplicated(subset=columns, keep="first").sum())
