"""Training: optimisers, callbacks, checkpoints and the fit loop used by `scripts/fit.py`."""

from keras_asanet.training.freed_memory import retain_freed_memory
from keras_asanet.training.optimizers import (
    CoupledWeightDecayAdam,
    make_optimizer,
    step_decay_schedule,
)

__all__ = [
    "CoupledWeightDecayAdam",
    "make_optimizer",
    "retain_freed_memory",
    "step_decay_schedule",
]
