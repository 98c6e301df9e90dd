"""Save and load of the Spark estimators and models: a local folder, no JVM writer.

A JSON metadata file (class, params, format version) plus an ``.npz`` of the fitted
arrays, written into a temporary sibling folder and renamed, so a failed save leaves
no half model. The same code works on classic Spark, Spark Connect and Databricks.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import custseg
from custseg.errors import ModelError

if TYPE_CHECKING:
    from pyspark.ml.param import Params


METADATA_FILE = "metadata.json"


ARRAYS_FILE = "arrays.npz"


SAVE_FORMAT_VERSION = 1


def untuple(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def metadata(obj: Params, kind: str) -> dict[str, Any]:

    return {
        "class": f"{type(obj).__module__}.{type(obj).__qualname__}",
        "kind": kind,
        "uid": obj.uid,
        "format_version": SAVE_FORMAT_VERSION,
        "custseg_version": custseg.__version__,
        "params": obj._param_values(),  # type: ignore[attr-defined]
    }


def check_class(meta: dict[str, Any], cls: type, path: Any) -> None:
    if meta["class"].rsplit(".", 1)[-1] != cls.__name__:
        raise ModelError(f"{path} holds a saved {meta['class']}, not a {cls.__name__}")


def write_saved(
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    overwrite: bool,
) -> None:
    """Write into a temporary sibling folder, then rename: a failed save leaves no half model."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise ModelError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        (tmp / METADATA_FILE).write_text(
            json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8"
        )
        if arrays:
            np.savez(tmp / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_saved(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    folder = Path(path)
    meta_file = folder / METADATA_FILE
    if not meta_file.is_file():
        raise ModelError(
            f"no saved custseg estimator or model at {folder} (missing {METADATA_FILE})"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_file} is not valid JSON: {exc}") from None
    if int(meta.get("format_version", 0)) > SAVE_FORMAT_VERSION:
        raise ModelError(
            f"{folder} was saved in format {meta['format_version']}, newer than this custseg reads "
            f"({SAVE_FORMAT_VERSION})"
        )
    arrays: dict[str, np.ndarray] = {}
    arrays_file = folder / ARRAYS_FILE
    if arrays_file.is_file():
        with np.load(arrays_file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return meta, arrays
