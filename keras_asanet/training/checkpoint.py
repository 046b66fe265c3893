"""Atomic, resumable training checkpoints: model weights, optimiser state and run state.

A checkpoint is a folder `ckpt-<epoch>` written under a temporary name and renamed into
place, so a run killed at any moment leaves either the previous checkpoint or the new one,
never half of one. It holds:

- `model.weights.h5`: every model weight (network, centres, BN statistics, lambda_PMI);
- `optimizer.npz`: the optimiser's variables (both Adam and the centres' SGD, iterations);
- `state.json`: completed epochs, the data pipeline's state (sampler seed and epoch, from
  which batches and augmentation are replayed), the history so far and the run's settings.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np

_PREFIX = "ckpt-"
_FILES = ("model.weights.h5", "optimizer.npz", "state.json")


class CheckpointError(RuntimeError):
    """No usable checkpoint (missing, corrupt or from another configuration)."""


def _optimizer_variables(optimizer):
    return list(optimizer.variables)


def _optimizer_keys(model, variables):
    """A key per optimiser variable that names what it holds, independent of the order in
    which the optimiser was built and of Keras' auto-numbered layer names.

    A slot variable (Adam's momentum of a weight) is named after its weight's path, e.g.
    `network_adam/asa_net_conv1_kernel_momentum`; the weight's path becomes its position among
    the model's trainable variables (which follows the architecture, not the names), and the
    key reads `@2/#3_momentum`. The optimiser's own name (`adam`, `adam_1`, ... when Keras
    numbers it) becomes its rank among the optimisers in order of first appearance (`@2`);
    variables of no weight keep their name (`@0/iteration`).
    """
    owners = sorted(
        ((v.path.replace("/", "_") + "_", i) for i, v in enumerate(model.trainable_variables)),
        key=lambda item: -len(item[0]),  # the longest weight name that prefixes a slot name
    )
    keys, optimizers = [], {}
    for v in variables:
        optimizer, _, name = v.path.rpartition("/")
        rank = optimizers.setdefault(optimizer, len(optimizers))
        for prefix, index in owners:
            if name.startswith(prefix):
                name = f"#{index}_{name[len(prefix) :]}"
                break
        keys.append(f"@{rank}/{name}")
    return keys


def save_checkpoint(directory, model, state, keep=2):
    """Writes `ckpt-<epoch>` atomically and keeps the newest `keep` checkpoints.

    Args:
        directory: the run's checkpoint folder (created if needed).
        model: a compiled model whose optimiser is built.
        state: JSON-serialisable dict; must contain `"epoch"` (epochs completed).
        keep: how many checkpoints to keep (>= 1).

    Returns:
        The checkpoint's path.
    """
    import keras

    os.makedirs(directory, exist_ok=True)
    epoch = int(state["epoch"])
    final = os.path.join(directory, f"{_PREFIX}{epoch:06d}")
    tmp = tempfile.mkdtemp(prefix=f".{_PREFIX}{epoch:06d}-", dir=directory)
    try:
        model.save_weights(os.path.join(tmp, "model.weights.h5"))
        variables = _optimizer_variables(model.optimizer)
        np.savez(
            os.path.join(tmp, "optimizer.npz"),
            **{
                f"v{i:05d}": np.asarray(keras.ops.convert_to_numpy(v.value))
                for i, v in enumerate(variables)
            },
            __paths__=np.asarray([v.path for v in variables]),
            __keys__=np.asarray(_optimizer_keys(model, variables)),
        )
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(state, f, indent=1, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(directory):
    """Complete checkpoint folders, oldest first (temporary ones are ignored)."""
    if not os.path.isdir(directory):
        return []
    names = sorted(
        n for n in os.listdir(directory) if n.startswith(_PREFIX) and n[len(_PREFIX) :].isdigit()
    )
    return [os.path.join(directory, n) for n in names]


def load_checkpoint(path, model):
    """Restores weights and optimiser state from one checkpoint folder; returns its state.

    Raises:
        CheckpointError: a file is missing, truncated or does not fit the model.
    """
    import keras

    for name in _FILES:
        if not os.path.isfile(os.path.join(path, name)):
            raise CheckpointError(f"Checkpoint {path!r} lacks {name}.")
    try:
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        int(state["epoch"])
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"Checkpoint {path!r}: state.json is unreadable ({err}).") from None
    try:
        # The optimiser's variables in the .h5 are matched by position; they are restored
        # below from optimizer.npz, by what each holds, instead.
        skip = [model.optimizer] if getattr(model, "optimizer", None) is not None else None
        model.load_weights(os.path.join(path, "model.weights.h5"), objects_to_skip=skip)
    except Exception as err:  # h5py / Keras raise many types for truncated or foreign files
        raise CheckpointError(
            f"Checkpoint {path!r}: model.weights.h5 cannot be loaded into this model ({err})."
        ) from None
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    variables = _optimizer_variables(optimizer)
    try:
        with np.load(os.path.join(path, "optimizer.npz")) as data:
            paths = [str(p) for p in data["__paths__"]]
            values = [data[f"v{i:05d}"] for i in range(len(paths))]
            saved_keys = [str(k) for k in data["__keys__"]] if "__keys__" in data else None
    except Exception as err:
        raise CheckpointError(
            f"Checkpoint {path!r}: optimizer.npz is unreadable ({err})."
        ) from None
    if len(values) != len(variables):
        raise CheckpointError(
            f"Checkpoint {path!r} holds {len(values)} optimiser variables but this model's "
            f"optimiser has {len(variables)}: it was made with another configuration."
        )
    if saved_keys is not None:
        # Matched by what each variable holds (see `_optimizer_keys`), not by position.
        # (Checkpoints written before the keys were saved are restored by position.)
        by_key = dict(zip(saved_keys, values))
        keys = _optimizer_keys(model, variables)
        missing = [k for k in keys if k not in by_key]
        if missing or len(by_key) != len(saved_keys):
            raise CheckpointError(
                f"Checkpoint {path!r}: its optimiser variables do not match this model's "
                f"(e.g. {missing[:3]} are not in it): it was made with another configuration."
            )
        values = [by_key[k] for k in keys]
    for v, value in zip(variables, values):
        if tuple(v.shape) != tuple(value.shape):
            raise CheckpointError(
                f"Checkpoint {path!r}: optimiser variable {v.path} has shape {value.shape}, "
                f"expected {tuple(v.shape)}."
            )
    for v, value in zip(variables, values):
        v.assign(keras.ops.convert_to_tensor(value, dtype=v.dtype))
    return state


def latest_state(directory):
    """`(state, path)` of the newest checkpoint whose state.json is readable, without
    loading any weights (a resumed run compares its settings before building a model), or
    `(None, None)` when there is none."""
    for path in reversed(list_checkpoints(directory)):
        try:
            with open(os.path.join(path, "state.json")) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(state, dict):
            return state, path
    return None, None


def restore_latest(directory, model, log=print):
    """Loads the newest usable checkpoint under `directory`, falling back to older ones.

    Returns:
        `(state, path)` of the checkpoint used.

    Raises:
        CheckpointError: no checkpoint, or none usable (each failure is named).
    """
    candidates = list_checkpoints(directory)
    if not candidates:
        raise CheckpointError(
            f"No checkpoint to resume from in {directory!r} (expected folders named "
            f"{_PREFIX}NNNNNN written by a previous run with the same --output)."
        )
    failures = []
    for path in reversed(candidates):
        try:
            return load_checkpoint(path, model), path
        except CheckpointError as err:
            failures.append(str(err))
            log(f"warning: {err} Trying the previous checkpoint.")
    raise CheckpointError("No usable checkpoint: " + " | ".join(failures))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
