"""PK identity sampling: P identities x K tracklets per batch, as metric-learning losses need."""

from __future__ import annotations

import numpy as np


class PKSampler:
    """Plans epochs of P identities x K tracklets per batch (paper: 8 x 4).

    Every identity is visited once per epoch, in a random order, with K of its tracklets
    (drawn without replacement, or with replacement when it has fewer than K), as the
    video re-ID samplers of Video-Person-ReID / AGW do. When the identity count is not a
    multiple of P, the last batch is completed with identities drawn from the rest of the
    epoch, so no identity is dropped and every batch is full.

    The plan is a pure function of `(seed, epoch)`, so a resumed run replays the exact
    batches: the sampler's whole state is `{"seed", "epoch"}` (`get_state` / `set_state`).

    Args:
        pids: the identity label of each training tracklet (a sequence of ints).
        num_identities: P, identities per batch (>= 2: negatives for the triplet loss).
        num_instances: K, tracklets per identity (>= 2: positives for the triplet loss).
        seed: the seed of every epoch's plan.

    Example:

    ```python
    sampler = PKSampler([0, 0, 1, 1, 2, 2], num_identities=2, num_instances=2, seed=0)
    batches = sampler.epoch_batches(0)  # 2 batches of 4 tracklet indices
    ```
    """

    def __init__(self, pids, num_identities=8, num_instances=4, seed=0):
        pids = np.asarray(pids)
        if pids.ndim != 1 or pids.size == 0:
            raise ValueError("PKSampler needs a non-empty 1-D sequence of tracklet pids.")
        if not np.issubdtype(pids.dtype, np.integer):
            raise ValueError(f"PKSampler pids must be integers, got dtype {pids.dtype}.")
        if int(num_identities) < 1 or int(num_instances) < 1:
            raise ValueError(
                f"P (num_identities={num_identities}) and K (num_instances={num_instances}) "
                "must be >= 1."
            )
        # The losses need both kinds of pair in every batch, and P * K = 1 lets batch norm
        # zero every feature: a degenerate batch trains on wrong numbers without an error.
        if int(num_instances) < 2:
            raise ValueError(
                f"K = {num_instances} tracklet per identity: the triplet losses (WRT, PMI) find "
                "no positive pair in such a batch (no two clips of one identity); use K >= 2 "
                "(the paper uses 4)."
            )
        if int(num_identities) < 2:
            raise ValueError(
                f"P = {num_identities} identity per batch: the triplet loss finds no negative "
                "(every clip has the same identity); use P >= 2 (the paper uses 8)."
            )
        self.identities = np.unique(pids)
        if int(num_identities) > len(self.identities):
            raise ValueError(
                f"P = {num_identities} identities per batch, but the training split has only "
                f"{len(self.identities)} identities."
            )
        self.num_identities = int(num_identities)
        self.num_instances = int(num_instances)
        self.seed = int(seed)
        self.epoch = 0
        order = np.argsort(pids, kind="stable")
        bounds = np.searchsorted(pids[order], self.identities, side="left")
        ends = np.searchsorted(pids[order], self.identities, side="right")
        self._members = [order[b:e] for b, e in zip(bounds, ends)]

    @property
    def batch_size(self) -> int:
        return self.num_identities * self.num_instances

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.identities) // self.num_identities)

    def epoch_batches(self, epoch=None):
        """The batches of `epoch` (default: the current one), each a list of P*K tracklet
        indices ordered identity by identity (K consecutive entries per identity)."""
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.identities))
        p = self.num_identities
        shortfall = (-len(order)) % p
        if shortfall:
            pool = np.setdiff1d(np.arange(len(self.identities)), order[-(len(order) % p) :])
            order = np.concatenate([order, rng.choice(pool, shortfall, replace=False)])
        batches = []
        for start in range(0, len(order), p):
            batch = []
            for ident in order[start : start + p]:
                members = self._members[ident]
                replace = len(members) < self.num_instances
                batch.extend(rng.choice(members, self.num_instances, replace=replace).tolist())
            batches.append(batch)
        return batches

    def get_state(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def set_state(self, state) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
