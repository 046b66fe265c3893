"""The two optimisers of ASA-Net's training step, built on what Keras provides.

The paper trains the network with Adam (lr 3e-4, weight decay 5e-4, PyTorch's Adam: the decay
is an L2 term added to the gradient) and the centre-loss centres with plain SGD at lr 0.5, the
centres' gradient divided by lambda_cent (as AGW does). Keras' `MultiOptimizer` routes each
variable to its optimiser by a regex on its path, so the stock `train_step` of every backend
performs both updates in one step; dividing a plain-SGD gradient by lambda_cent is exactly
the same as using lr 0.5 / lambda_cent, which is what `make_optimizer` does.
"""

from __future__ import annotations

import re

import keras
from keras import ops

#: The first Keras release with `keras.optimizers.MultiOptimizer` and `OptimizerMap`; the floor
#: of the `keras` requirement in pyproject.toml.
MIN_KERAS_VERSION = "3.15"


def require_multi_optimizer():
    """Raises an ImportError saying what to install if this Keras lacks `MultiOptimizer`."""
    missing = [
        name for name in ("MultiOptimizer", "OptimizerMap") if not hasattr(keras.optimizers, name)
    ]
    if missing:
        raise ImportError(
            "keras_asanet.training.make_optimizer needs keras.optimizers."
            f"{' and keras.optimizers.'.join(missing)}, added in Keras {MIN_KERAS_VERSION}; "
            f"found Keras {keras.__version__}. Upgrade with "
            f'`python -m pip install -U "keras>={MIN_KERAS_VERSION}"` (keras-asanet requires '
            f"keras>={MIN_KERAS_VERSION})."
        )


@keras.saving.register_keras_serializable(package="keras_asanet")
class CoupledWeightDecayAdam(keras.optimizers.Adam):
    """Adam whose weight decay is an L2 term added to the gradient, as `torch.optim.Adam`.

    Keras' `Adam(weight_decay=...)` decays the weights directly (decoupled, AdamW-style);
    re-ID recipes written in PyTorch (AGW, ASA-Net) use `torch.optim.Adam(weight_decay=...)`,
    which adds `weight_decay * w` to the gradient before the moment updates. This class does
    the latter by default; `decoupled_weight_decay=True` restores Keras' behaviour.

    Args:
        learning_rate: float or `LearningRateSchedule`.
        weight_decay: the L2 coefficient (paper: 5e-4).
        decoupled_weight_decay: use Keras' decoupled decay instead.
        weight_decay_exclude: None, or a regex searched in each `variable.path`: the
            variables it matches get no weight decay (e.g. `ATTRIBUTE_HEADS`, the attribute
            heads of an `ASANet`). Keras' own `exclude_from_weight_decay(var_names=...)`
            matches the short `variable.name` only (`"kernel"`), and is not saved; this is
            part of the config.
        **kwargs: the other `keras.optimizers.Adam` arguments (`epsilon` defaults to
            PyTorch's 1e-8).

    Example:

    ```python
    opt = CoupledWeightDecayAdam(learning_rate=3e-4, weight_decay=5e-4)
    ```
    """

    def __init__(
        self,
        learning_rate=3e-4,
        weight_decay=5e-4,
        decoupled_weight_decay=False,
        epsilon=1e-8,
        weight_decay_exclude=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, epsilon=epsilon, **kwargs
        )
        self.decoupled_weight_decay = bool(decoupled_weight_decay)
        if weight_decay_exclude is not None:
            try:
                re.compile(weight_decay_exclude)
            except (TypeError, re.error) as err:
                raise ValueError(
                    f"weight_decay_exclude must be a regular expression, got "
                    f"{weight_decay_exclude!r} ({err})."
                ) from None
        self.weight_decay_exclude = weight_decay_exclude

    def _use_weight_decay(self, variable):
        if self.weight_decay_exclude is not None:
            # TensorFlow's update step hands over the tf.Variable, named by the path + ":0".
            path = getattr(variable, "path", None) or variable.name.split(":")[0]
            if re.search(self.weight_decay_exclude, path):
                return False
        return super()._use_weight_decay(variable)

    def _apply_weight_decay(self, variables):
        if self.decoupled_weight_decay:
            super()._apply_weight_decay(variables)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # On torch, all variables at once (keras_asanet/training/torch_adam_step.py): Keras'
        # per-variable loop was a third of the main job's training step there.
        if keras.backend.backend() == "torch":
            from keras_asanet.training import torch_adam_step

            if torch_adam_step.supports(self, trainable_variables):
                torch_adam_step.coupled_adam_update(self, grads, trainable_variables, learning_rate)
                return
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        if (
            not self.decoupled_weight_decay
            and self.weight_decay
            and self._use_weight_decay(variable)
        ):
            gradient = ops.add(
                gradient, ops.multiply(ops.cast(self.weight_decay, variable.dtype), variable)
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["decoupled_weight_decay"] = self.decoupled_weight_decay
        config["weight_decay_exclude"] = self.weight_decay_exclude
        return config


def step_decay_schedule(learning_rate, decay_epochs, steps_per_epoch, factor=0.1):
    """Piecewise-constant learning rate: times `factor` at each epoch of `decay_epochs`.

    A step-indexed `keras.optimizers.schedules.PiecewiseConstantDecay`, so it lives inside the
    optimiser (saved with it, exact after a resume) instead of in a callback.
    """
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}.")
    decay_epochs = sorted(int(e) for e in decay_epochs)
    if not decay_epochs:
        return float(learning_rate)
    # PiecewiseConstantDecay switches once the step count *exceeds* a boundary; the optimiser
    # step that starts epoch e has seen e * steps_per_epoch steps, so the boundary is one less.
    boundaries = [e * int(steps_per_epoch) - 1 for e in decay_epochs]
    values = [float(learning_rate) * factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


#: `weight_decay_exclude` of the attribute heads of an `ASANet` (`re_attr_head`,
#: `ir_attr_head`): a head's few weights map a shared feature to attributes, and an L2 term
#: strong enough to regularise the identity network pushes them to the majority class
#: (docs/results.md measures it).
ATTRIBUTE_HEADS = r"(^|/)(re|ir)_attr_head/"

#: `weight_decay_exclude` of the query and key convolutions of an `ASANet`'s two ASREs.
#: Behind a ReLU, a query or key channel that goes negative everywhere gets no gradient, and
#: a strong L2 term then shrinks the convolution to zero: the attention logits vanish, the
#: softmax becomes uniform and the mask is constant within every frame (docs/results.md).
ASRE_ATTENTION = r"(^|/)(re|ir)_asre/(query|key)_conv/"


def decay_exclusions(*patterns):
    """One `weight_decay_exclude` regex that matches any of `patterns`.

    The runner spares several groups of weights from the decay (the attribute heads, and on
    request ASRE's query / key convolutions); `CoupledWeightDecayAdam` takes one pattern.

    Args:
        *patterns: regular expressions searched in variable paths, or None (skipped).

    Returns:
        The only pattern given, unchanged; the alternation of several, each in a
        non-capturing group; or None when every pattern is None (nothing is excluded).

    Example:

    ```python
    exclude = decay_exclusions(ATTRIBUTE_HEADS, ASRE_ATTENTION)
    optimizer = make_optimizer(weight_decay=1e-2, weight_decay_exclude=exclude)
    ```
    """
    kept = [p for p in patterns if p]
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0]
    return "|".join(f"(?:{p})" for p in kept)


#: lambda_cent of an `ASANet` built with the default loss-weight reading ("swapped"), the
#: default of `make_optimizer` so that `make_optimizer()` fits `ASANet(...)` as it comes
#: (optimizers_test checks that they agree).
DEFAULT_CENTER_LOSS_WEIGHT = 0.0005


def make_optimizer(
    learning_rate=3e-4,
    weight_decay=5e-4,
    decoupled_weight_decay=False,
    center_learning_rate=0.5,
    center_loss_weight=DEFAULT_CENTER_LOSS_WEIGHT,
    center_variable_pattern=r"(.*/)?centers",
    weight_decay_exclude=None,
):
    """Adam for the network and SGD for the centre-loss centres, in one `MultiOptimizer`.

    Args:
        learning_rate: Adam's learning rate or schedule (paper: 3e-4, x0.1 at epochs 100,
            250, 350; see `step_decay_schedule`).
        weight_decay: Adam's weight decay (paper: 5e-4).
        decoupled_weight_decay: Keras-style decoupled decay instead of PyTorch's L2.
        center_learning_rate: the centres' SGD learning rate (paper: 0.5).
        center_loss_weight: lambda_cent; the centres' gradient is divided by it, i.e. their
            SGD runs at `center_learning_rate / center_loss_weight`. Pass the model's
            (`model.center_loss_weight`); the default, 0.0005, is an `ASANet`'s default
            (the "swapped" loss-weight reading; "printed" is 1.5).
        center_variable_pattern: regex fully matching the `variable.path` of the centres
            (default: any variable named `centers`).
        weight_decay_exclude: regex of the variable paths Adam does not decay (see
            `CoupledWeightDecayAdam`; `ATTRIBUTE_HEADS` for an ASANet's attribute heads), or
            None to decay every network weight, as the paper's PyTorch Adam.

    Returns:
        A `keras.optimizers.MultiOptimizer`.

    Raises:
        ImportError: the installed Keras is older than 3.15 (no `MultiOptimizer`).
    """
    require_multi_optimizer()
    if center_loss_weight <= 0:
        raise ValueError(f"center_loss_weight (lambda_cent) must be > 0, got {center_loss_weight}.")
    if center_learning_rate <= 0:
        raise ValueError(f"center_learning_rate must be > 0, got {center_learning_rate}.")
    adam = CoupledWeightDecayAdam(
        learning_rate=learning_rate,
        weight_decay=weight_decay or None,
        decoupled_weight_decay=decoupled_weight_decay,
        weight_decay_exclude=weight_decay_exclude,
        name="network_adam",
    )
    sgd = keras.optimizers.SGD(
        learning_rate=center_learning_rate / center_loss_weight, name="centers_sgd"
    )
    mapping = keras.optimizers.OptimizerMap(adam, {center_variable_pattern: sgd})
    return keras.optimizers.MultiOptimizer(mapping, name="asanet_optimizer")
