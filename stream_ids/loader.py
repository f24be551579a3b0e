"""Read CICFlowMeter CSVs of every layout into the canonical schema.

Column names go through one alias table (:mod:`stream_ids.schema`) and one header reader
(:func:`stream_ids.layouts.plan_header`), which also names the layout a file resembles most
(:data:`stream_ids.layouts.LAYOUTS`). The layout decides three things only:

* time unit: the Python ``cicflowmeter`` writes durations, inter-arrival and active/idle times
  in seconds; they are scaled to the canonical microseconds of Java CICFlowMeter;
* timestamps: every timestamp becomes float epoch seconds **UTC**. ISO timestamps (the corrected
  sets, CIC-DDoS2019) are UTC already. ``d/m/Y H:M[:S] [AM|PM]`` timestamps honour AM/PM when
  present. The original CICIDS2017 files (``cicids2017-*`` layouts) have no AM/PM and were
  captured 8:00-17:59 local time, so an hour 1..7 is read as 13..19 (PM) and 8..12 as written;
  CICIDS2017 local time is UTC-3, so 3 h are added. Other layouts' slash timestamps are taken as
  UTC as written (the capture zone is not recorded in the file);
* nothing else: a column means the same whichever layout it comes from.

Labels (:func:`stream_ids.schema.label_class`): a benign label gives ``is_attack`` 0, any other
label 1; no label column, or a placeholder such as ``NeedManualLabel``, gives -1. Two ``Label``
columns (CIC-Darknet2020: traffic class, application) are joined as ``class/application``, judged
by the first. The corrected sets' ``Attempted Category`` other than -1 marks an *attempted*
attack, which counts as benign. The latin-1 byte ``\\x96`` (an en dash in cp1252) and a UTF-8
replacement character are both normalised to ``-``.

An empty file (no header, or a header and no rows) is skipped with an
:class:`EmptyFileWarning`; a file that lacks a model feature raises :class:`SchemaError` naming
the missing features and the nearest known layout.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pandas as pd

from stream_ids import schema
from stream_ids.errors import SchemaError
from stream_ids.layouts import HeaderPlan, plan_header, repair_periods

PathArg = str | PathLike[str]


class EmptyFileWarning(UserWarning):
    """A flow file with no rows was skipped."""

# Output column order: identifiers, ground truth, features.
OUTPUT_COLUMNS: tuple[str, ...] = (
    *schema.IDENTIFIER_NAMES,
    "label",
    "is_attack",
    *schema.FEATURE_NAMES,
)
_STRING_IDENTIFIERS = ("flow_id", "src_ip", "dst_ip")
_TIME_FEATURES = frozenset(schema.TIME_FEATURES)
_CICIDS2017_UTC_OFFSET_S = 3 * 3600.0
_SLASH_TIMESTAMP = re.compile(
    r"^\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*([AaPp][Mm])?\s*$"
)


# A folder stands for the flow files in it and its sub-folders, in path order.
FLOW_FILE_SUFFIXES = (".csv", ".csv.gz")


def is_flow_file(path: Path) -> bool:
    """A CSV, or a gzip-compressed CSV (``.csv.gz``), by name."""
    return path.name.lower().endswith(FLOW_FILE_SUFFIXES)


def expand_flow_paths(paths: PathArg | Iterable[PathArg]) -> list[Path]:
    """Files as given; a folder stands for the ``*.csv`` and ``*.csv.gz`` files in it and its
    sub-folders, sorted by path.

    Every command that reads flow files (``train``, ``evaluate``, ``score``, ``replay``,
    ``relay``, ``calibrate``) goes through this, so a folder means the same thing everywhere.
    Raises :class:`SchemaError` for a path that does not exist or a folder with no flow file.
    """
    path_list = [paths] if isinstance(paths, str | PathLike) else list(paths)
    out: list[Path] = []
    for raw in path_list:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_flow_file(p))
            if not found:
                raise SchemaError(f"{path}: folder holds no *.csv or *.csv.gz file")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise SchemaError(f"{path}: no such file or folder")
    return out


def _open_binary(path: Path) -> BinaryIO:
    if path.name.lower().endswith(".gz"):
        return cast(BinaryIO, gzip.open(path, "rb"))  # GzipFile reads bytes like BinaryIO
    return path.open("rb")


def _read_header(path: Path) -> list[str] | None:
    """The header line's columns; ``None`` for an empty file."""
    with _open_binary(path) as handle:
        first = handle.readline()
    text = first.decode("latin-1").lstrip("\ufeff").lstrip("ï»¿")
    if not text.strip():
        return None
    return next(csv.reader(io.StringIO(text)))


def detect_layout(header: Iterable[str]) -> str:
    """Name the layout of a CSV header (one of :data:`stream_ids.layouts.LAYOUT_NAMES`)."""
    return plan_header(list(header)).layout


def read_plan(path: PathArg) -> HeaderPlan | None:
    """The :class:`HeaderPlan` of a flow file's header, or ``None`` for an empty file."""
    header = _read_header(Path(path))
    return None if header is None else plan_header(header)


def _kept_columns(plan: HeaderPlan) -> dict[int, str]:
    """Position -> canonical name of the columns read; label columns as ``label``/``label_2``."""
    kept = {position: name for name, position in plan.positions.items() if name != "label"}
    for index, position in enumerate(plan.label_positions[:2]):
        kept[position] = "label" if index == 0 else "label_2"
    return kept


def _dtypes(kept: dict[int, str]) -> dict[int, object]:
    dtypes: dict[int, object] = {}
    for position, name in kept.items():
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


def label_classes(labels: pd.Series) -> np.ndarray:
    """``is_attack`` (1, 0, -1) per label; each distinct label is judged once."""
    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    judged = np.array([schema.label_class(value) for value in uniques], dtype=np.int8)
    out = np.full(len(codes), schema.UNLABELLED, dtype=np.int8)
    valid = codes >= 0
    out[valid] = judged[codes[valid]]
    return out


def _labels(chunk: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """(label text, is_attack) of a chunk's label column(s)."""
    n = len(chunk)
    if "label" not in chunk:
        return pd.Series([None] * n, index=chunk.index, dtype="str"), np.full(n, -1, np.int8)
    present = chunk["label"].notna()
    labels = normalize_labels(chunk["label"]).where(present)
    is_attack = label_classes(labels)
    if "label_2" in chunk:  # CIC-Darknet2020: traffic class / application
        second = normalize_labels(chunk["label_2"]).where(chunk["label_2"].notna())
        labels = (labels + "/" + second).fillna(labels)
    if "attempted_category" in chunk:
        attempted = chunk["attempted_category"].fillna(-1).to_numpy() != -1
        is_attack[attempted & (is_attack == schema.ATTACK)] = schema.BENIGN
    return labels, is_attack


def _finish_chunk(chunk: pd.DataFrame, plan: HeaderPlan, dtype: type) -> pd.DataFrame:
    features = list(schema.FEATURE_NAMES)
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
        parse_timestamps(chunk["timestamp"], plan.layout)
        if "timestamp" in chunk
        else np.full(n, np.nan)
    )
    out["label"], out["is_attack"] = _labels(chunk)
    scale = plan.time_scale
    for name in features:
        values = chunk[name].to_numpy(dtype=np.float64)
        if scale != 1.0 and name in _TIME_FEATURES:
            values = values * scale
        out[name] = values.astype(dtype, copy=False)
    repair_periods(out)
    return pd.DataFrame({name: out[name] for name in OUTPUT_COLUMNS}, index=chunk.index)


def iter_flow_frames(
    paths: PathArg | Iterable[PathArg],
    chunksize: int = 200_000,
    *,
    dtype: type = np.float64,
) -> Iterator[pd.DataFrame]:
    """Yield canonical DataFrames, ``chunksize`` rows at a time, file after file.

    ``paths``: files or folders (:func:`expand_flow_paths`). Columns: :data:`OUTPUT_COLUMNS`
    (identifiers missing in a layout are NaN/None). Features are ``dtype`` (float64 by default)
    with Infinity/NaN preserved (the transform owns that rule). Raises :class:`SchemaError`
    naming the missing features and the nearest layout for a file that lacks a feature; warns
    (:class:`EmptyFileWarning`) and skips an empty file.
    """
    for path in expand_flow_paths(paths):
        for _plan, chunk in iter_file_chunks(path, chunksize, dtype=dtype):
            yield chunk


def iter_file_chunks(
    path: PathArg, chunksize: int = 200_000, *, dtype: type = np.float64
) -> Iterator[tuple[HeaderPlan, pd.DataFrame]]:
    """One file's (header plan, canonical chunk) pairs; nothing (and a warning) if empty."""
    path = Path(path)
    plan = read_plan(path)
    if plan is None:
        warnings.warn(f"{path}: empty file (no header line), skipped", EmptyFileWarning,
                      stacklevel=3)
        return
    plan.require_features(path)
    kept = _kept_columns(plan)
    try:
        reader = pd.read_csv(
            path,
            header=None,
            skiprows=1,
            usecols=list(kept),
            dtype=_dtypes(kept),
            encoding="latin-1",
            chunksize=chunksize,
            skipinitialspace=True,
            na_values=["", "NaN", "nan"],
            keep_default_na=False,
            low_memory=True,
        )
    except pd.errors.EmptyDataError:
        warnings.warn(f"{path}: header only, no flows; skipped", EmptyFileWarning, stacklevel=3)
        return
    rows = 0
    for chunk in reader:
        chunk.columns = [kept[position] for position in chunk.columns]
        frame = _finish_chunk(chunk, plan, dtype)
        rows += len(frame)
        yield plan, frame
    if rows == 0:
        warnings.warn(f"{path}: no flows after the header; skipped", EmptyFileWarning,
                      stacklevel=3)


def load_flows(
    paths: PathArg | Iterable[PathArg],
    *,
    dtype: type = np.float32,
    chunksize: int = 200_000,
    provenance: bool = False,
) -> pd.DataFrame:
    """Every flow of ``paths`` in one canonical DataFrame (features ``dtype``: float32 default).

    ``provenance``: add a ``layout`` column (the file's layout) and a ``file`` column (its path).
    """
    frames = []
    for path in expand_flow_paths(paths):
        for plan, frame in iter_file_chunks(path, chunksize, dtype=dtype):
            if provenance:
                frame = frame.assign(layout=plan.layout, file=str(path))
            frames.append(frame)
    if not frames:
        columns = [*OUTPUT_COLUMNS, *(("layout", "file") if provenance else ())]
        return pd.DataFrame({name: [] for name in columns})
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
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
