"""The model-directory contract, shared by training (``model/``) and serving (the scorer).

A model directory holds ``model.keras`` (the Keras network), ``transform.json`` (the fitted
feature transform) and ``manifest.json``; the manifest records the sha256 of the other two, the
window length, the threshold and the model version. Training writes it with
:func:`write_manifest` (hashes from :func:`file_hashes`); serving reads it with
:func:`read_manifest` and refuses any file whose hash differs (:func:`verify_artifacts`, an
:class:`~stream_ids.errors.ArtifactError` naming the file).

The default directory is the shipped model, ``model/shipped/`` inside the installed ``model``
package: :func:`shipped_model_dir` finds that folder without importing ``model`` (``stream_ids``
never imports ``model``; the shipped files are data).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from os import PathLike
from pathlib import Path
from typing import Any

from stream_ids.errors import ArtifactError

MODEL_FILE = "model.keras"
TRANSFORM_FILE = "transform.json"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
HASHED_FILES = (MODEL_FILE, TRANSFORM_FILE)  # the files whose sha256 the manifest records
FORMAT = "stream-ids-model"


def shipped_model_dir() -> Path:
    """``model/shipped/`` of the installed ``model`` package (found, not imported)."""
    spec = importlib.util.find_spec("model")
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError("the model package is not installed: no shipped model")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "shipped"


def model_dir_or_shipped(model_dir: str | PathLike[str] | None) -> Path:
    """``model_dir`` as a path, or the shipped model's directory when it is None."""
    return Path(model_dir) if model_dir is not None else shipped_model_dir()


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks (the manifest's hashes, capture cache keys)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(model_dir: Path) -> dict[str, str]:
    """The manifest's ``sha256`` entry: the hash of each of :data:`HASHED_FILES`."""
    return {name: sha256_file(model_dir / name) for name in HASHED_FILES}


def write_manifest(model_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (indented JSON, one trailing newline); returns its path."""
    path = model_dir / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The manifest of ``model_dir``; ArtifactError if missing, unreadable or not ours."""
    path = model_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing manifest") from None
    except (OSError, ValueError) as error:
        raise ArtifactError(f"{path}: unreadable manifest ({error})") from error
    if not isinstance(manifest, dict) or "sha256" not in manifest or "window" not in manifest:
        raise ArtifactError(f"{path}: not a stream-ids model manifest")
    return manifest


def verify_artifacts(model_dir: Path, manifest: dict[str, Any]) -> None:
    """Raise ArtifactError naming the first file whose sha256 differs from the manifest."""
    for name in HASHED_FILES:
        path = model_dir / name
        expected = manifest["sha256"].get(name)
        if not path.is_file():
            raise ArtifactError(f"{path}: missing")
        if expected is None:
            raise ArtifactError(f"{model_dir / MANIFEST_FILE}: no sha256 recorded for {name}")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"{path}: sha256 {actual[:16]}... does not match the manifest "
                f"({expected[:16]}...); "
                "the file is corrupted, tampered with or from another model"
            )


def verified_manifest(model_dir: Path) -> dict[str, Any]:
    """The manifest of ``model_dir`` after checking every hashed file against it."""
    manifest = read_manifest(model_dir)
    verify_artifacts(model_dir, manifest)
    return manifest


def model_sha256(manifest: dict[str, Any]) -> str:
    """The sha256 of ``model.keras`` a manifest records (what calibrations are bound to)."""
    return str(manifest["sha256"][MODEL_FILE])
