"""The synthetic dataset a trained model is evaluated on: another seed than its training's.

A synthetic dataset's test split has identities the model never saw, but in the same camera
scenes; the dataset of another seed has new identities *and* new scenes, the number that says
whether the model learned people rather than backgrounds. `scripts/evaluate.py
--dataset synthetic` builds (or reuses) it at the training run's size.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class UnseenSynthetic:
    """Where and at which size the synthetic dataset of `seed` is (to be) built.

    Attributes:
        root: its folder (`keras_asanet.data.default_synthetic_root`).
        seed: its seed.
        identities: its identity count.
        image_size: its frame size `(height, width)`.
        warning: why this seed is not unseen for the checkpoint (it trained on it), or
            `None`.
    """

    root: str
    seed: int
    identities: int
    image_size: tuple
    warning: str | None = None

    def describe(self) -> str:
        h, w = self.image_size
        return (
            f"Synthetic dataset of seed {self.seed} ({self.identities} identities, {h}x{w}) at "
            f"{self.root}: its test split is unseen identities in unseen scenes for a model "
            "trained on another seed."
        )

    def build(self, verbose=False):
        """Builds the dataset, or reuses it when it is already there; returns `root`.

        Raises:
            ValueError, OSError: as `keras_asanet.data.make_synthetic_mars`.
        """
        from keras_asanet.data import make_synthetic_mars

        make_synthetic_mars(
            self.root,
            num_identities=self.identities,
            image_size=tuple(self.image_size),
            seed=self.seed,
            verbose=verbose,
        )
        return self.root


def unseen_synthetic(run_config, seed=None, identities=None, image_size=None, cache_dir=None):
    """The `UnseenSynthetic` a checkpoint is evaluated on.

    Args:
        run_config: the training run's config (`training_run_config`; `{}` if unknown).
        seed: the dataset's seed (default: the training runs' held-out seed,
            `RunConfig.heldout_seed`, 1000; they train on seed 0).
        identities: its identities (default: those of the run's own held-out evaluation,
            `heldout_identities`, else its training set's, else 300).
        image_size: its frame size (default: the training default, 64 x 32); pass the
            model's training size.
        cache_dir: the folder of the synthetic datasets (default ~/.keras_asanet/synthetic).

    Returns:
        An `UnseenSynthetic` (nothing is built yet: call its `build()`).
    """
    from keras_asanet.data import default_synthetic_root
    from keras_asanet.training.runner import RunConfig

    seed = RunConfig.heldout_seed if seed is None else int(seed)
    # The held-out set the run itself was scored on; runs written before
    # `heldout_identities` existed scored on a set as large as their training set.
    identities = (
        identities
        or run_config.get("heldout_identities")
        or run_config.get("synthetic_identities")
        or RunConfig.heldout_identities
    )
    size = tuple(int(s) for s in (image_size or RunConfig.image_size))
    warning = None
    if run_config.get("dataset") == "synthetic":
        trained_seed = run_config.get("dataset_seed", run_config.get("seed"))
        if trained_seed == seed:
            warning = (
                f"the checkpoint's run trained on synthetic seed {seed}: these identities are "
                "unseen but the scenes are not; pick another seed."
            )
    root = default_synthetic_root(identities, size, seed, base=cache_dir)
    return UnseenSynthetic(root, seed, int(identities), size, warning)
