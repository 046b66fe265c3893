"""Callbacks of the ASA-Net recipe: the lambda_PMI switch, periodic re-ID evaluation, the NaN
guard, learning-rate logging and per-epoch checkpoints."""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from keras_asanet.training.checkpoint import save_checkpoint

# A few units of rounding of each float dtype (float32 rounds 0.01 to 0.0099999998).
_REL_TOL = {"float64": 1e-12, "float32": 1e-6, "float16": 2e-3, "bfloat16": 1e-2}


class PMIWeightSwitch(keras.callbacks.Callback):
    """Raises lambda_PMI once the ID-irrelevant attribute BCE is low enough (paper §IV-B).

    The paper sets lambda_PMI to 0.005 and turns it to 0.01 "when L_BCE is smaller than 0.15,
    which means the prediction of pose and motion is accurate enough"; we watch the
    ID-irrelevant BCE (`bce_ir`, DESIGN.md §3) at the end of each epoch. The value lives in the
    model's non-trainable `pmi_weight` variable, so it is saved with checkpoints and a resumed
    run continues with the right weight. That variable is also the callback's only state: it
    switches when the variable does not yet hold `new_weight` (allowing for the variable's
    float32 rounding), so it switches once per run, and not again after a resume.

    Args:
        threshold: switch when the monitored value is below this (0.15).
        new_weight: lambda_PMI after the switch (0.01).
        monitor: the log key watched (`"bce_ir"`).
    """

    def __init__(self, threshold=0.15, new_weight=0.01, monitor="bce_ir"):
        super().__init__()
        self.threshold = float(threshold)
        self.new_weight = float(new_weight)
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        value = logs.get(self.monitor)
        variable = self.model.pmi_weight_variable
        current = float(keras.ops.convert_to_numpy(variable.value))
        if value is not None and value < self.threshold and not self.switched(variable):
            variable.assign(self.new_weight)
            print(
                f"\nEpoch {epoch + 1}: {self.monitor} = {value:.4f} < {self.threshold}: "
                f"lambda_PMI {current:g} -> {self.new_weight:g}"
            )

    def switched(self, variable):
        """Whether the lambda_PMI `variable` already holds `new_weight`.

        A float32 variable never holds 0.01 exactly, so `==` with the Python float is false
        forever; the comparison allows the rounding of the variable's dtype.
        """
        current = float(keras.ops.convert_to_numpy(variable.value))
        rel_tol = _REL_TOL.get(keras.backend.standardize_dtype(variable.dtype), 1e-6)
        return math.isclose(current, self.new_weight, rel_tol=rel_tol, abs_tol=1e-12)


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate the network optimiser used in the last step of the epoch to the
    logs (`learning_rate`)."""

    def _network_optimizer(self):
        opt = self.model.optimizer
        inner = getattr(opt, "inner_optimizer", None)  # LossScaleOptimizer
        opt = inner or opt
        if hasattr(opt, "optimizers"):  # MultiOptimizer: the network's is the default one
            default = getattr(getattr(opt, "_optimizer_map", None), "default_optimizer", None)
            opt = default or opt.optimizers[-1]
        return opt

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        opt = self._network_optimizer()
        schedule = getattr(opt, "_learning_rate", None)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            lr = schedule(keras.ops.maximum(opt.iterations - 1, 0))
        else:
            lr = opt.learning_rate
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(lr))


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, with a message saying what to do.

    Checkpoints are written only at the end of a finished epoch with finite losses, so the
    last one on disk is the last good state; `stopped` and `message` tell the caller.
    """

    def __init__(self):
        super().__init__()
        self.stopped = False
        self.message = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            terms = {
                k: float(v)
                for k, v in (logs or {}).items()
                if isinstance(v, (int, float, np.floating))
            }
            self.stopped = True
            self.message = (
                f"Training stopped: the loss became {loss} at batch {batch}. Loss terms: "
                f"{terms}. The last good checkpoint is kept; lower the learning rate, check "
                "the input data, or disable mixed precision, then resume."
            )
            self.model.stop_training = True


class ReIDEvaluation(keras.callbacks.Callback):
    """Runs the re-ID evaluation every `every` epochs and adds rank-1, mAP and mINP to logs.

    Args:
        dataset: a dataset with `.query`, `.gallery`, `.attribute_schema`.
        every: evaluate after every `every`-th epoch (and after the last, see `final_epoch`).
        final_epoch: the last epoch index of the run (0-based), always evaluated.
        **evaluate_kwargs: passed to `keras_asanet.evaluation.evaluate_model` (`mode`,
            `seq_len`, `image_size`, `batch_size`, `setup`, `metric`).
    """

    def __init__(self, dataset, every=1, final_epoch=None, **evaluate_kwargs):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        self.dataset = dataset
        self.every = int(every)
        self.final_epoch = final_epoch
        self.evaluate_kwargs = evaluate_kwargs
        self.last_report = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and epoch != self.final_epoch:
            return
        self.last_report = evaluate_asanet(self.model, self.dataset, **self.evaluate_kwargs)
        ranking = self.last_report.ranking
        if logs is not None:
            logs["rank1"] = float(ranking.rank(1))
            logs["mAP"] = float(ranking.mAP)
            logs["mINP"] = float(ranking.mINP)
        print(
            f"\nEpoch {epoch + 1} re-ID: rank-1 {100 * ranking.rank(1):.1f}  "
            f"mAP {100 * ranking.mAP:.1f}  mINP {100 * ranking.mINP:.1f}"
        )


def evaluate_asanet(model, dataset, **kwargs):
    """`keras_asanet.evaluation.evaluate_asanet` (evaluation logic lives there; kept here for
    the callers of this module)."""
    from keras_asanet.evaluation.asanet_evaluation import evaluate_asanet as evaluate

    return evaluate(model, dataset, **kwargs)


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes an atomic checkpoint at the end of every epoch whose losses are finite.

    Args:
        directory: checkpoint folder.
        train_data: the training `PyDataset` (its `get_state()` is saved).
        run_config: JSON-serialisable settings of the run, saved for `--resume` checks.
        keep: checkpoints kept.
        history: a dict of lists the callback extends and saves (so a resumed run's
            curves are complete).
    """

    def __init__(self, directory, train_data, run_config=None, keep=2, history=None):
        super().__init__()
        self.directory = directory
        self.train_data = train_data
        self.run_config = run_config or {}
        self.keep = int(keep)
        self.history = history if history is not None else {}
        self.last_path = None

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        values = {k: float(v) for k, v in logs.items() if np.isscalar(v) or np.ndim(v) == 0}
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)
        if not math.isfinite(values.get("loss", 0.0)):
            return
        # The pipeline's state after this epoch: Keras calls `on_epoch_end` of the dataset
        # after the callbacks, so the next epoch is `epoch + 1`.
        data_state = dict(self.train_data.get_state())
        data_state["epoch"] = epoch + 1
        state = {
            "epoch": epoch + 1,
            "data_state": data_state,
            "history": self.history,
            "run_config": self.run_config,
            "saved_at": time.time(),
        }
        self.last_path = save_checkpoint(self.directory, self.model, state, keep=self.keep)
