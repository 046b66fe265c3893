import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_asanet.layers import data_format as df
from keras_asanet.tests.test_case import TestCase

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Every layer of the package that takes a `data_format`, channels-first against channels-last
# with the same weights. Run in a fresh interpreter on TensorFlow with oneDNN disabled, where
# TensorFlow's CPU Conv2D / MaxPool reject NCHW: the layers must compute channels-last there.
_COMPARE_SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np

    from keras_asanet.backbones import AGWResNet
    from keras_asanet.layers import (
        ASRE,
        AttributeResidualBranch,
        BottleneckBlock,
        GeMPooling2D,
        NonLocalBlock2D,
        SpatioTemporalPooling,
    )
    from keras_asanet.layers.data_format import compute_data_format

    assert keras.backend.backend() == "tensorflow"
    assert compute_data_format("channels_first") == "channels_last"
    rng = np.random.default_rng(0)
    to_first = lambda a: np.transpose(a, (0, 3, 1, 2))
    to_last = lambda a: np.transpose(np.asarray(a), (0, 2, 3, 1))

    def randomize(layer):
        for w in layer.weights:
            value = rng.normal(size=w.shape) * 0.3
            if "variance" in w.path:
                value = np.abs(value) + 0.5
            w.assign(value.astype("float32"))

    def compare(name, make, x_last, map_output=to_last):
        last, first = make("channels_last"), make("channels_first")
        x_first = [to_first(x) for x in x_last] if isinstance(x_last, list) else to_first(x_last)
        last(x_last)
        first(x_first)
        randomize(last)
        assert [w.shape for w in first.weights] == [w.shape for w in last.weights], name
        first.set_weights(last.get_weights())
        out_last = keras.tree.flatten(last(x_last, training=False))
        out_first = keras.tree.flatten(first(x_first, training=False))
        for a, b in zip(out_first, out_last):
            a = map_output(keras.ops.convert_to_numpy(a))
            np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), atol=1e-4, rtol=1e-4)
        config = first.get_config()
        assert config["data_format"] == "channels_first", (name, config)
        assert type(first).from_config(config).data_format == "channels_first", name
        print("OK", name)

    x = rng.normal(size=(2, 9, 7, 8)).astype("float32")
    compare("BottleneckBlock", lambda f: BottleneckBlock(4, strides=2, data_format=f), x)
    compare("NonLocalBlock2D", lambda f: NonLocalBlock2D(zero_init=False, data_format=f), x)
    compare(
        "AttributeResidualBranch",
        lambda f: AttributeResidualBranch(16, num_blocks=2, data_format=f),
        x,
    )
    compare(
        "ASRE",
        lambda f: ASRE(return_mask=True, data_format=f),
        [x, rng.normal(size=(2, 9, 7, 6)).astype("float32")],
    )
    compare("GeMPooling2D", lambda f: GeMPooling2D(data_format=f), x, map_output=lambda a: a)
    compare(
        "SpatioTemporalPooling",
        lambda f: SpatioTemporalPooling(seq_len=2, data_format=f),
        x,
        map_output=lambda a: a,
    )
    images = rng.uniform(0, 255, size=(2, 37, 21, 3)).astype("float32")
    backbone = {"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 1, 1, 0)}
    compare("AGWResNet", lambda f: AGWResNet(**backbone, data_format=f), images)
    """
)


class DataFormatTest(TestCase):
    def test_compute_format_on_this_backend(self):
        torch_cpu = keras.backend.backend() == "torch" and not df._torch_sees_a_gpu()
        self.assertEqual(df.channels_last_computes_channels_first(), torch_cpu)
        self.assertEqual(
            df.compute_data_format("channels_last"),
            "channels_first" if torch_cpu else "channels_last",
        )
        tf_cpu = keras.backend.backend() == "tensorflow" and not df._tensorflow_sees_a_gpu()
        self.assertEqual(df.channels_first_needs_channels_last_compute(), tf_cpu)
        self.assertEqual(
            df.compute_data_format("channels_first"),
            "channels_last" if tf_cpu else "channels_first",
        )

    def test_transposes_and_shapes(self):
        x = np.arange(2 * 3 * 4 * 5, dtype="float32").reshape(2, 3, 4, 5)  # channels-first
        last = df.to_compute(x, "channels_first", "channels_last")
        self.assertAllEqual(last, np.transpose(x, (0, 2, 3, 1)))
        self.assertAllEqual(df.from_compute(last, "channels_first", "channels_last"), x)
        self.assertIs(df.to_compute(x, "channels_first", "channels_first"), x)
        self.assertEqual(
            df.shape_to_compute((None, 3, 4, 5), "channels_first", "channels_last"),
            (None, 4, 5, 3),
        )
        self.assertEqual(
            df.shape_from_compute((None, 4, 5, 3), "channels_first", "channels_last"),
            (None, 3, 4, 5),
        )
        self.assertEqual(
            df.shape_to_compute((1, 2, 3, 4), "channels_last", "channels_last"), (1, 2, 3, 4)
        )

    # Runs TensorFlow in its own process whatever the suite's backend: once per command.
    @pytest.mark.heavy
    @pytest.mark.subprocess
    @pytest.mark.backend_independent
    def test_channels_first_on_tensorflow_cpu_without_onednn(self):
        if importlib.util.find_spec("tensorflow") is None:
            self.skipTest("tensorflow is not installed")
        env = dict(
            os.environ,
            KERAS_BACKEND="tensorflow",
            TF_ENABLE_ONEDNN_OPTS="0",
            CUDA_VISIBLE_DEVICES="",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        result = subprocess.run(
            [sys.executable, "-c", _COMPARE_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr[-4000:])
        self.assertEqual(result.stdout.count("OK "), 7, result.stdout)
