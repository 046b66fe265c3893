import keras
import numpy as np
import pytest

from keras_asanet.layers.bottleneck_block import BottleneckBlock
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.tests.test_case import TestCase

pytestmark = pytest.mark.only_backends("jax")

# (name, Conv2D arguments, input shape): maps whose output has fewer positions than the
# kernel has taps, as after the blocks' explicit one-pixel padding on 64x32 frames.
CASES = [
    ("3x3 on a padded 4x2 map", dict(filters=16, kernel_size=3, use_bias=False), (6, 6, 4, 8)),
    (
        "3x3, bias and relu",
        dict(filters=5, kernel_size=3, activation="relu"),
        (3, 6, 4, 7),
    ),
    ("3x3 on a padded 2x1 map", dict(filters=4, kernel_size=3), (2, 4, 3, 3)),
    ("2x2 to a single position", dict(filters=6, kernel_size=2), (4, 2, 2, 5)),
]


def _outputs_and_grads(layer, x, direct):
    """The output and its gradients (input, then every weight) through either path."""
    import jax

    weights = [v.value for v in layer.trainable_variables]

    def f(x, *values):
        with keras.StatelessScope(state_mapping=list(zip(layer.trainable_variables, values))):
            return call_sublayer(layer, x) if direct else layer(x)

    out = f(x, *weights)
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype("float32")
    grads = jax.grad(lambda *a: (f(*a) * upstream).sum(), argnums=tuple(range(1 + len(weights))))(
        x, *weights
    )
    return [out, *grads]


class JaxConvTest(TestCase):
    def test_agrees_with_keras_conv2d(self):
        """Outputs and every gradient equal Keras' convolution to float rounding."""
        import jax.numpy as jnp

        from keras_asanet.layers import jax_conv

        for name, kwargs, shape in CASES:
            keras.utils.set_random_seed(0)
            layer = keras.layers.Conv2D(**kwargs)
            layer.build(shape)
            x = jnp.asarray(np.random.default_rng(0).standard_normal(shape).astype("float32"))
            self.assertTrue(jax_conv.applies(layer, x), msg=name)
            ours = _outputs_and_grads(layer, x, direct=True)
            theirs = _outputs_and_grads(layer, x, direct=False)
            self.assertEqual(len(ours), len(theirs))
            for a, b in zip(ours, theirs):
                self.assertEqual(tuple(a.shape), tuple(b.shape), msg=name)
                self.assertAllClose(a, b, atol=1e-5, rtol=1e-5, msg=name)

    def test_applies_only_where_the_output_has_fewer_positions_than_taps(self):
        import jax.numpy as jnp

        from keras_asanet.layers import jax_conv

        def check(kwargs, shape, expected, dtype="float32"):
            layer = keras.layers.Conv2D(**kwargs)
            layer.build(shape)
            x = jnp.zeros(shape, dtype)
            self.assertEqual(jax_conv.applies(layer, x), expected, msg=f"{kwargs} {shape}")

        check(dict(filters=4, kernel_size=3), (2, 6, 4, 3), True)  # 4x2 out, 9 taps
        check(dict(filters=4, kernel_size=3), (2, 10, 6, 3), False)  # 8x4 out: Keras' conv
        check(dict(filters=4, kernel_size=3), (2, 5, 5, 3), False)  # 3x3 out: 9, not fewer
        check(dict(filters=4, kernel_size=3, strides=2), (2, 6, 4, 3), False)
        check(dict(filters=4, kernel_size=3, dilation_rate=2), (2, 7, 7, 3), False)
        check(dict(filters=4, kernel_size=3, padding="same"), (2, 4, 2, 3), False)
        check(dict(filters=6, kernel_size=3, groups=3), (2, 6, 4, 3), False)
        check(dict(filters=4, kernel_size=3), (2, 6, 4, 3), False, dtype="float16")
        check(dict(filters=4, kernel_size=3, data_format="channels_first"), (2, 3, 6, 4), False)

        class Custom(keras.layers.Conv2D):
            pass

        layer = Custom(4, 3)
        layer.build((2, 6, 4, 3))
        self.assertFalse(jax_conv.applies(layer, jnp.zeros((2, 6, 4, 3))))
        unbuilt = keras.layers.Conv2D(4, 3)
        self.assertFalse(jax_conv.applies(unbuilt, jnp.zeros((2, 6, 4, 3))))

    def test_xla_no_longer_swaps_the_blocks_convolution(self):
        """A bottleneck block on a 4x2 map compiles without XLA's swapped convolution.

        XLA writes the swapped form as a convolution with `rhs_reversal`. Keras' own call of
        the block's 3x3 convolution on its padded 4x2 input compiles to it (so the check can
        fail); the whole block, whose call goes through `call_sublayer`, does not.
        """
        import jax
        import jax.numpy as jnp

        keras.utils.set_random_seed(0)
        block = BottleneckBlock(8)
        x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 4, 2, 32)), "float32")
        block.build(x.shape)
        trainable = [v.value for v in block.trainable_variables]
        non_trainable = [v.value for v in block.non_trainable_variables]

        def run_block(x, trainable, non_trainable):
            return block.stateless_call(trainable, non_trainable, x, training=True)[0]

        def run_keras_conv(x, kernel):
            padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            with keras.StatelessScope(state_mapping=[(block.conv2.kernel, kernel)]):
                return block.conv2(padded)

        def compiled(f, *args):
            return jax.jit(f).lower(*args).compile().as_text()

        inner = x[..., :8]  # the 3x3 convolution's input width (filters=8)
        self.assertIn("rhs_reversal", compiled(run_keras_conv, inner, block.conv2.kernel.value))
        self.assertNotIn("rhs_reversal", compiled(run_block, x, trainable, non_trainable))
