"""What a saved model says about its training, and whether it fits the dataset it is run on.

`scripts/evaluate.py` gets a `.keras` file and a dataset and nothing else. The frames have to
be shown at the size and clip length the model was trained with (the training run's
`results.json` beside the checkpoint, else the model's own input or build shape), and a
checkpoint whose identity classifier is wider or narrower than the dataset's training split
was trained on another dataset: evaluating it as if it were not would report a
cross-dataset number under the wrong protocol.
"""

from __future__ import annotations

import json
import os

from keras_asanet.evaluation.feature_extraction import _infer_image_size, built_image_size

#: Training identities of the public datasets (the classifier width of their checkpoints).
TRAIN_IDENTITIES = {"mars": 625, "duke": 702}
#: Clip length when neither the caller nor the training run gives one (the paper's T).
DEFAULT_SEQ_LEN = 6


class ClassCountMismatch(ValueError):
    """A checkpoint's identity classifier does not match the dataset's training split."""


def model_num_classes(model) -> int | None:
    """The width of the model's identity classifier (`num_classes` / `num_identities`, as an
    attribute or in its config), or `None` when the model does not say."""
    for attr in ("num_classes", "num_identities"):
        value = getattr(model, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    try:
        config = model.get_config()
    except Exception:  # noqa: BLE001 - a model without a usable config
        return None
    for key in ("num_classes", "num_identities"):
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def training_identities(dataset, dataset_name=None) -> int | None:
    """Identities of the dataset's training split, else the published count of
    `dataset_name` (`TRAIN_IDENTITIES`), else `None`."""
    count = len({t.pid for t in getattr(dataset, "train", None) or []})
    return count or TRAIN_IDENTITIES.get(dataset_name)


def check_identity_classes(model, dataset, dataset_name) -> None:
    """Raises `ClassCountMismatch` when `model`'s identity classifier cannot have been trained
    on `dataset`'s training split.

    Call it only when the model is meant to have been trained on this dataset (not for a
    cross-dataset evaluation, nor on a synthetic dataset of another seed, whose training
    split is not the model's). A model or dataset that does not tell its class count passes.

    Args:
        model: the loaded model.
        dataset: the dataset read for evaluation (its `.train` split is counted).
        dataset_name: its canonical name (`"mars"`, `"duke"`), for the message and for the
            published count when the dataset has no training split.

    Raises:
        ClassCountMismatch: with both counts and, when the class count is that of a public
            dataset, which one.
    """
    num_classes = model_num_classes(model)
    train_ids = training_identities(dataset, dataset_name)
    if num_classes is None or not train_ids or num_classes == train_ids:
        return
    others = [name for name, count in TRAIN_IDENTITIES.items() if count == num_classes]
    hint = f" (that is the class count of {others[0]})" if others else ""
    raise ClassCountMismatch(
        f"the checkpoint has {num_classes} identity classes{hint} but the {dataset_name} "
        f"training split has {train_ids} identities: it was not trained on {dataset_name}."
    )


def training_run_config(weights_path) -> dict:
    """The `config` of the training run's `results.json` beside the checkpoint, or `{}`
    (no file, unreadable, or no config in it)."""
    path = os.path.join(os.path.dirname(os.path.abspath(weights_path)), "results.json")
    try:
        with open(path) as f:
            config = json.load(f).get("config") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return config if isinstance(config, dict) else {}


def _size(value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            return (int(value[0]), int(value[1]))
    return None


def training_image_size(model, run_config):
    """`(size, where it came from)`: the model's fixed input size, else the training run's
    (`run_config["image_size"]`), else the size the model was built for, else
    `(None, None)`."""
    fixed = _infer_image_size(model)
    if fixed:
        return fixed, "the model's input size"
    size = _size(run_config.get("image_size"))
    if size:
        return size, "the training run's results.json"
    size = built_image_size(model)
    if size:
        return size, "the size the model was built for"
    return None, None


def training_seq_len(run_config, seq_len=None) -> int:
    """The clip length to evaluate with: `seq_len` when given, else the training run's (a
    positive int in `run_config["seq_len"]`), else `DEFAULT_SEQ_LEN`.

    Raises:
        ValueError: `seq_len` is given but below 1 (0 is not "unset").
    """
    return _positive_int_setting(run_config, "seq_len", seq_len, DEFAULT_SEQ_LEN)


def training_eval_batch_size(run_config, batch_size=None) -> int:
    """Clips per extraction batch: `batch_size` when given, else the training run's
    (`run_config["eval_batch_size"]`, so a checkpoint is scored in the batches its run used),
    else 32.

    Raises:
        ValueError: `batch_size` is given but below 1.
    """
    return _positive_int_setting(run_config, "eval_batch_size", batch_size, 32, "batch_size")


def _positive_int_setting(run_config, key, given, default, name=None):
    """`given` when not None (checked >= 1), else the run's positive int `run_config[key]`,
    else `default`."""
    if given is not None:
        if int(given) < 1:
            raise ValueError(f"{name or key} must be >= 1, got {given}.")
        return int(given)
    trained = run_config.get(key)
    if isinstance(trained, int) and not isinstance(trained, bool) and trained > 0:
        return trained
    return default


def training_flip_test(run_config, flip=None) -> bool:
    """Whether to average each clip's feature with its mirror's: `flip` when given, else what
    the training run evaluated with (`run_config["flip_test"]`), else `False` (runs written
    before the setting existed, and checkpoints without a run, were scored unflipped).
    """
    if flip is not None:
        return bool(flip)
    return run_config.get("flip_test") is True
