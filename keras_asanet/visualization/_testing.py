"""What the visualisation tests share within one test process: one tiny synthetic dataset and
one tiniest ASANet (built once: on JAX an ASANet's build runs every layer eagerly, and each
eager op is compiled, so building one per test class cost ~15 s each).

Test support only; nothing in the library imports it.
"""

from __future__ import annotations

import atexit
import os
import tempfile

#: The tiniest ASANet (keras_asanet/models/asanet_test.py's TINY).
TINY = dict(
    backbone={"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 1, 1, 0)},
    attribute_branch_blocks=1,
    branch_dim=8,
)
IMAGE_SIZE = (32, 16)
_SHARED = {}


def _folder():
    if "tmp" not in _SHARED:
        _SHARED["tmp"] = tempfile.TemporaryDirectory(prefix="keras_asanet_vis_test_")
        atexit.register(_SHARED["tmp"].cleanup)
    return _SHARED["tmp"].name


def synthetic_dataset():
    """`(root, Mars(root))` of `make_synthetic_mars(root, 12 identities, 32x16, seed 2)`;
    read only by the tests."""
    if "dataset" not in _SHARED:
        from keras_asanet.data import Mars, make_synthetic_mars

        root = os.path.join(_folder(), "synthetic")
        make_synthetic_mars(root, num_identities=12, image_size=IMAGE_SIZE, seed=2)
        _SHARED["dataset"] = (root, Mars(root))
    return _SHARED["dataset"]


def tiny_asanet():
    """The tiniest ASANet, classifier sized for `synthetic_dataset()`'s training split,
    built for 32x16 clips of 2 frames. Tests must leave it as they found it."""
    if "model" not in _SHARED:
        from keras_asanet.models import ASANet

        _, dataset = synthetic_dataset()
        model = ASANet(num_identities=dataset.num_train_pids, **TINY)
        model.build_for_input((None, 2, *IMAGE_SIZE, 3))
        _SHARED["model"] = model
    return _SHARED["model"]
