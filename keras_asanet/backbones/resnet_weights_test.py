import os

import h5py
import numpy as np
from absl.testing import parameterized

from keras_asanet.backbones.agw_resnet import AGWResNet
from keras_asanet.backbones.agw_resnet_test import (
    forward,
    images,
    make_resnet_state_dict,
    save_state_dict,
    torch_reference,
)
from keras_asanet.backbones.resnet_weights import (
    load_resnet50_weights,
    read_resnet_state_dict,
)
from keras_asanet.tests.test_case import TestCase

TINY = {"block_counts": (1, 2, 2, 1), "width": 4, "non_local": (0, 0, 0, 0)}
KERAS_EPSILON = 1.001e-5


def keras_layer_name(torch_module):
    """torchvision module name -> keras.applications ResNet50 layer name."""
    if torch_module == "conv1":
        return "conv1_conv"
    if torch_module == "bn1":
        return "conv1_bn"
    _, block, *rest = torch_module.split(".")
    stage = int(torch_module[len("layer")]) + 1
    if rest[0] == "downsample":
        index, kind = "0", "conv" if rest[1] == "0" else "bn"
    else:
        kind, index = rest[0][:-1], rest[0][-1]
    return f"conv{stage}_block{int(block) + 1}_{index}_{kind}"


def write_keras_h5(path, sd, seed, layout="weights", suffix=":0", shape_override=None):
    """Writes `sd` in the legacy Keras HDF5 layout of `keras.applications.ResNet50`.

    Convolutions get (random) biases and batch norms Keras' epsilon; the running statistics
    are adjusted so that the network computes exactly what `sd` computes in PyTorch.
    `layout="weights"` mimics the downloaded weights file (root = layers, names with ":0");
    `layout="model"` mimics `model.save("x.h5")` (a `model_weights` group).
    """
    rng = np.random.default_rng(seed)
    layers = {}
    for name, value in sd.items():
        module, _, param = name.rpartition(".")
        if param == "num_batches_tracked":
            continue
        if module == "fc":
            layers.setdefault("predictions", {})["kernel" if param == "weight" else "bias"] = (
                value.T if param == "weight" else value
            )
            continue
        layer = keras_layer_name(module)
        if param == "weight" and value.ndim == 4:
            out_c = value.shape[0]
            bias = rng.normal(0, 0.3, out_c).astype("float32")
            layers.setdefault(layer, {})["kernel"] = np.transpose(value, (2, 3, 1, 0))
            layers[layer]["bias"] = bias
            bn_layer = layer[: -len("conv")] + "bn"
            layers.setdefault(bn_layer, {})["_conv_bias"] = bias
        else:
            keras_param = {
                "weight": "gamma",
                "bias": "beta",
                "running_mean": "moving_mean",
                "running_var": "moving_variance",
            }[param]
            layers.setdefault(layer, {})[keras_param] = value
    for params in layers.values():
        bias = params.pop("_conv_bias", None)
        if bias is not None:
            params["moving_mean"] = params["moving_mean"] + bias
            params["moving_variance"] = params["moving_variance"] - (KERAS_EPSILON - 1e-5)
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if layout == "model" else f
        names = ["input_1", "conv1_pad"] + sorted(layers) + ["pool1_pad", "avg_pool"]
        root.attrs["layer_names"] = [n.encode() for n in names]
        for layer in names:
            group = root.create_group(layer)
            params = layers.get(layer, {})
            order = [p for p in ("kernel", "bias", "gamma", "beta") if p in params]
            order += [p for p in ("moving_mean", "moving_variance") if p in params]
            weight_names = [f"{layer}/{p}{suffix}" for p in order]
            group.attrs["weight_names"] = [w.encode() for w in weight_names]
            for weight_name, p in zip(weight_names, order):
                value = params[p]
                if shape_override and weight_name.startswith(shape_override[0] + "/kernel"):
                    value = np.zeros(shape_override[1], "float32")
                group.create_dataset(weight_name, data=np.asarray(value, "float32"))
    return path


class ResNetWeightsTest(TestCase):
    def _tiny(self, **options):
        return AGWResNet(**{**TINY, **options}, kernel_initializer="zeros")

    def _sd(self, seed=0):
        return make_resnet_state_dict(seed, num_classes=10, **TINY)

    @parameterized.named_parameters(
        ("downloaded_weights_file_v15", "weights", ":0", {}),
        ("saved_model_file_v1", "model", "", {"stride_in_1x1": True}),
    )
    def test_keras_h5_matches_torch_reference(self, layout, suffix, options):
        sd = self._sd(1)
        path = write_keras_h5(
            os.path.join(self.get_temp_dir(), "resnet50.h5"), sd, 2, layout, suffix
        )
        backbone = self._tiny(**options)
        report = load_resnet50_weights(backbone, path)
        self.assertEqual(report["missing"], [])
        self.assertIn("fc.weight", report["ignored"])
        x = images(3, (2, 61, 37, 3))
        expected = torch_reference(sd, x, TINY["block_counts"], **options)
        self.assertAllClose(forward(backbone, x), expected, atol=1e-4, rtol=1e-4)

    def test_keras_h5_biases_are_folded_into_running_mean(self):
        sd = self._sd(4)
        path = write_keras_h5(os.path.join(self.get_temp_dir(), "w.h5"), sd, 5)
        arrays, dropped = read_resnet_state_dict(path)
        self.assertEqual(dropped, [])
        self.assertNotIn("conv1.bias", arrays)
        for name in ("bn1.running_mean", "layer2.0.downsample.1.running_mean"):
            self.assertAllClose(arrays[name], sd[name], atol=1e-6)
        self.assertAllClose(arrays["layer1.0.bn2.running_var"], sd["layer1.0.bn2.running_var"])
        self.assertAllClose(arrays["layer3.1.conv2.weight"], sd["layer3.1.conv2.weight"])

    def test_keras_h5_wrong_shape(self):
        sd = self._sd(6)
        path = write_keras_h5(
            os.path.join(self.get_temp_dir(), "w.h5"),
            sd,
            7,
            shape_override=("conv2_block1_2_conv", (3, 3, 4, 5)),
        )
        with self.assertRaises(ValueError) as context:
            load_resnet50_weights(self._tiny(), path)
        message = str(context.exception)
        self.assertIn("wrong shape", message)
        self.assertIn("layer1.0.conv2.weight [h5 conv2_block1_2_conv/kernel]", message)
        self.assertIn("file (5, 4, 3, 3), expected (4, 4, 3, 3)", message)

    def test_keras_3_weights_file_is_refused(self):
        path = os.path.join(self.get_temp_dir(), "model.weights.h5")
        with h5py.File(path, "w") as f:
            f.create_group("layers").create_group("conv2d").create_group("vars")
            f.create_group("vars")
        with self.assertRaisesRegex(ValueError, "Keras 3 `.weights.h5`"):
            load_resnet50_weights(self._tiny(), path)

    def test_missing_tensor(self):
        sd = self._sd(8)
        del sd["layer2.1.bn2.running_var"]
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "r.pth"))
        with self.assertRaises(ValueError) as context:
            load_resnet50_weights(self._tiny(), path)
        message = str(context.exception)
        self.assertIn("tensors missing from the file (1)", message)
        self.assertIn("layer2.1.bn2.running_var (8,)", message)
        self.assertIn("strict=False", message)
        # Non-strict: the rest is loaded and the missing tensor keeps its initial value.
        backbone = self._tiny()
        report = load_resnet50_weights(backbone, path, strict=False)
        self.assertEqual(report["missing"], ["layer2.1.bn2.running_var"])
        self.assertAllClose(backbone.layer2.blocks[1].bn2.moving_variance, np.ones(8))
        self.assertAllClose(
            backbone.layer2.blocks[1].bn2.moving_mean, sd["layer2.1.bn2.running_mean"]
        )
        self.assertAllClose(
            backbone.layer1.blocks[0].conv2.kernel,
            np.transpose(sd["layer1.0.conv2.weight"], (2, 3, 1, 0)),
        )

    def test_wrong_shape_is_an_error_even_when_not_strict(self):
        sd = self._sd(9)
        sd["layer1.0.conv2.weight"] = np.zeros((4, 4, 1, 1), "float32")
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "r.safetensors"))
        for strict in (True, False):
            with self.assertRaisesRegex(
                ValueError,
                r"layer1\.0\.conv2\.weight: file \(4, 4, 1, 1\), expected \(4, 4, 3, 3\)",
            ):
                load_resnet50_weights(self._tiny(), path, strict=strict)

    def test_wrong_width_lists_every_tensor(self):
        # A full-width file into a tiny model: every tensor is mis-shaped; the list is capped.
        sd = make_resnet_state_dict(10, width=8, block_counts=TINY["block_counts"])
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "r.safetensors"))
        with self.assertRaisesRegex(ValueError, r"wrong shape \(\d+\)[\s\S]*\.\.\. and \d+ more"):
            load_resnet50_weights(self._tiny(), path)

    def test_unexpected_tensor(self):
        sd = self._sd(11)
        sd["layer1.0.se.weight"] = np.zeros((3, 3), "float32")
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "r.pth"))
        with self.assertRaisesRegex(
            ValueError, r"unexpected tensors in the file \(1\):\n\s+layer1\.0\.se\.weight \(3, 3\)"
        ):
            load_resnet50_weights(self._tiny(), path)
        report = load_resnet50_weights(self._tiny(), path, strict=False)
        self.assertEqual(report["unexpected"], ["layer1.0.se.weight"])

    def test_more_blocks_in_file_than_in_model(self):
        sd = self._sd(12)
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "r.pth"))
        smaller = AGWResNet(
            block_counts=(1, 1, 2, 1), width=4, non_local=(0, 0, 0, 0), kernel_initializer="zeros"
        )
        with self.assertRaisesRegex(ValueError, r"layer2\.1\.conv1\.weight"):
            load_resnet50_weights(smaller, path)

    def test_prefixes(self):
        sd = self._sd(13)
        wrapped = {f"module.base.{k}": v for k, v in sd.items()}
        wrapped["module.classifier.weight"] = np.zeros((10, 128), "float32")
        path = save_state_dict(wrapped, os.path.join(self.get_temp_dir(), "agw.pth"))
        backbone = self._tiny()
        report = load_resnet50_weights(backbone, path, prefix="base.")
        self.assertIn("classifier.weight", report["ignored"])
        self.assertAllClose(backbone.bn1.moving_mean, sd["bn1.running_mean"])
        with self.assertRaisesRegex(ValueError, "base.conv1.weight"):
            load_resnet50_weights(self._tiny(), path)  # without the prefix nothing matches

    def test_nested_checkpoint_dict(self):
        import torch

        sd = self._sd(14)
        path = os.path.join(self.get_temp_dir(), "ckpt.pth")
        torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in sd.items()}}, path)
        arrays, _ = read_resnet_state_dict(path)
        self.assertAllClose(arrays["conv1.weight"], sd["conv1.weight"])

    def test_not_a_backbone(self):
        path = save_state_dict(self._sd(15), os.path.join(self.get_temp_dir(), "r.pth"))
        with self.assertRaisesRegex(ValueError, "must be an AGWResNet"):
            load_resnet50_weights(object(), path)

    def test_bad_files(self):
        missing = os.path.join(self.get_temp_dir(), "nope", "resnet50.pth")
        with self.assertRaises(FileNotFoundError) as context:
            load_resnet50_weights(self._tiny(), missing)
        self.assertIn(missing, str(context.exception))
        self.assertIn("torchvision resnet50 state dict", str(context.exception))

        other = os.path.join(self.get_temp_dir(), "resnet50.npz")
        np.savez(other, a=np.zeros(2))
        with self.assertRaisesRegex(ValueError, "Unsupported weights file .*resnet50.npz"):
            load_resnet50_weights(self._tiny(), other)

        import torch

        not_a_state_dict = os.path.join(self.get_temp_dir(), "list.pth")
        torch.save([torch.zeros(2)], not_a_state_dict)
        with self.assertRaisesRegex(ValueError, "does not hold a state dict"):
            load_resnet50_weights(self._tiny(), not_a_state_dict)

        garbage = os.path.join(self.get_temp_dir(), "garbage.pth")
        with open(garbage, "wb") as f:
            f.write(b"not a checkpoint")
        with self.assertRaisesRegex(ValueError, "Could not read"):
            load_resnet50_weights(self._tiny(), garbage)
