"""Saving and loading whole models without losing one to a half-written file.

`keras.models.load_model` on a truncated `.keras` file reports "File not found", which sends
the user looking for the wrong problem, and `model.save` writes its zip in place, so a run
killed while saving leaves a truncated `model.keras` over the previous good one.
"""

from __future__ import annotations

import os
import zipfile


class ModelFileError(ValueError):
    """A `.keras` file that is missing, truncated or not a Keras model archive."""


def check_model_file(path):
    """Raises `ModelFileError` unless `path` is a complete `.keras` zip archive.

    A `.keras` file is a zip archive holding `config.json` and `model.weights.h5`;
    `zipfile.is_zipfile` finds the central directory (gone when the end of the file is cut),
    `testzip` checks every member's CRC, and a save interrupted in place leaves a valid zip
    without the weights.
    """
    if not os.path.exists(path):
        raise ModelFileError(f"Model file {path!r} does not exist.")
    if os.path.isdir(path):
        raise ModelFileError(f"Model file {path!r} is a folder, not a .keras file.")
    problem = None
    if not zipfile.is_zipfile(path):
        problem = "it is not a zip archive"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            problem = f"it cannot be read ({err})"
        else:
            if bad is not None:
                problem = f"its member {bad!r} is corrupt"
            elif "config.json" not in names:
                problem = "it holds no config.json"
            elif not any(n.startswith("model.weights.") for n in names):
                # What an interrupted model.save leaves: a valid zip without the weights.
                problem = "it holds no model.weights file (an interrupted save?)"
    if problem:
        raise ModelFileError(
            f"Model file {path!r} is truncated or not a .keras file: {problem} "
            f"({os.path.getsize(path)} bytes)."
        )


def load_model(path, **kwargs):
    """`keras.models.load_model(path, **kwargs)` after `check_model_file(path)`.

    Raises:
        ModelFileError: the file is missing, truncated or not a `.keras` archive (the
            message names the path).
    """
    import keras

    import keras_asanet  # noqa: F401 - registers the library's classes for deserialisation

    check_model_file(path)
    return keras.models.load_model(path, **kwargs)


def save_model(model, path):
    """Saves `model` to `path` (a `.keras` file) atomically.

    The archive is written to `<name>.tmp.keras` in the same folder (Keras requires the
    `.keras` suffix) and renamed over `path` only once complete, so an interrupted save
    leaves the previous file, never a truncated one.
    """
    if not str(path).endswith(".keras"):
        raise ValueError(f"save_model writes .keras files; got {path!r}.")
    tmp = str(path)[: -len(".keras")] + ".tmp.keras"
    try:
        model.save(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
