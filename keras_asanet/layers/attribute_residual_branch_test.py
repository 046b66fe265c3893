import numpy as np

from keras_asanet.layers.attribute_residual_branch import AttributeResidualBranch
from keras_asanet.layers.bottleneck_block_test import np_bottleneck, randomize_weights
from keras_asanet.tests.test_case import TestCase


class AttributeResidualBranchTest(TestCase):
    def test_layer_behaviour(self):
        self.run_layer_test(
            AttributeResidualBranch,
            {"filters": 8, "num_blocks": 2},
            np.random.RandomState(0).rand(2, 4, 3, 16).astype("float32"),
            expected_output_shape=(2, 4, 3, 8),
            # block0: 4 convs + 4 BN (projection); block1: 3 convs + 3 BN (identity).
            expected_num_trainable_weights=12 + 9,
            expected_num_non_trainable_weights=8 + 6,
            run_precision_check=False,  # a stack of BottleneckBlocks, checked in their test
        )

    def test_structure_halves_the_backbone_width(self):
        # The ASA-Net setting: C -> C/2 at the backbone's resolution, 3 blocks by default.
        branch = AttributeResidualBranch(filters=32, kernel_initializer="zeros")
        self.assertEqual(branch.compute_output_shape((6, 8, 4, 64)), (6, 8, 4, 32))
        branch.build((6, 8, 4, 64))
        self.assertLen(branch.blocks, 3)
        self.assertEqual([b.filters for b in branch.blocks], [8, 8, 8])
        self.assertEqual([b.strides for b in branch.blocks], [1, 1, 1])
        self.assertEqual([b.has_projection for b in branch.blocks], [True, False, False])

    def test_matches_numpy_oracle(self):
        rng = np.random.default_rng(4)
        x = rng.normal(size=(2, 5, 3, 16)).astype("float32")
        branch = AttributeResidualBranch(
            filters=8, num_blocks=2, strides=2, kernel_initializer="zeros"
        )
        branch.build(x.shape)
        randomize_weights(branch, rng)
        expected = x.astype(np.float64)
        for block in branch.blocks:
            expected = np_bottleneck(expected, block)
        self.assertEqual(expected.shape, (2, 3, 2, 8))
        self.assertAllClose(branch(x, training=False), expected, atol=1e-4, rtol=1e-4)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "filters=10"):
            AttributeResidualBranch(filters=10)
        with self.assertRaisesRegex(ValueError, "num_blocks=0"):
            AttributeResidualBranch(filters=8, num_blocks=0)
        with self.assertRaisesRegex(ValueError, "4-D input"):
            AttributeResidualBranch(filters=8).build((3, 4, 16))
