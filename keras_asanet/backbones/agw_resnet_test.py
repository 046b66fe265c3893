import os

import keras
import numpy as np
import pytest
from absl.testing import parameterized
from keras import ops

from keras_asanet.backbones.agw_resnet import AGWResNet
from keras_asanet.backbones.resnet_weights import load_resnet50_weights
from keras_asanet.layers.bottleneck_block_test import randomize_weights
from keras_asanet.tests.test_case import TestCase, compute_gradients

# A tiny configuration for CPU tests: channels 4 (stem), 16, 32, 64 (layer3), 128 (layer4).
TINY = {"block_counts": (1, 2, 2, 1), "width": 4}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255.0


# ------------------------------------------------------------------------ shared test helpers


def make_resnet_state_dict(
    seed, block_counts=(3, 4, 6, 3), width=64, num_classes=1000, non_local=(0, 0, 0, 0)
):
    """A random state dict with exactly torchvision's ResNet names, order and shapes.

    Convolutions are He-scaled, batch norms have realistic running statistics, the residual
    batch norms have small `gamma` so activations stay O(1) through 16 blocks. With
    `non_local`, AGW-named non-local tensors (`NL_k.i.*`, inner width C // 2, non-zero output
    batch norm) are added.
    """
    rng = np.random.default_rng(seed)
    sd = {}

    def conv(name, out_c, in_c, k):
        std = np.sqrt(2.0 / (in_c * k * k))
        sd[f"{name}.weight"] = rng.normal(0, std, (out_c, in_c, k, k)).astype("float32")

    def bn(name, c, small=False):
        low, high = (0.1, 0.4) if small else (0.6, 1.2)
        sd[f"{name}.weight"] = rng.uniform(low, high, c).astype("float32")
        sd[f"{name}.bias"] = rng.normal(0, 0.1, c).astype("float32")
        sd[f"{name}.running_mean"] = rng.normal(0, 0.2, c).astype("float32")
        sd[f"{name}.running_var"] = rng.uniform(0.5, 2.0, c).astype("float32")
        sd[f"{name}.num_batches_tracked"] = np.array(1000, dtype=np.int64)

    conv("conv1", width, 3, 7)
    bn("bn1", width)
    in_c = width
    for s, n in enumerate(block_counts, start=1):
        planes = width * 2 ** (s - 1)
        for j in range(n):
            prefix = f"layer{s}.{j}"
            conv(f"{prefix}.conv1", planes, in_c, 1)
            bn(f"{prefix}.bn1", planes)
            conv(f"{prefix}.conv2", planes, planes, 3)
            bn(f"{prefix}.bn2", planes)
            conv(f"{prefix}.conv3", planes * 4, planes, 1)
            bn(f"{prefix}.bn3", planes * 4, small=True)
            if j == 0:
                conv(f"{prefix}.downsample.0", planes * 4, in_c, 1)
                bn(f"{prefix}.downsample.1", planes * 4, small=True)
            in_c = planes * 4
    sd["fc.weight"] = rng.normal(0, 0.01, (num_classes, in_c)).astype("float32")
    sd["fc.bias"] = np.zeros(num_classes, "float32")
    for s, n_nl in enumerate(non_local, start=1):
        c = width * 2 ** (s - 1) * 4
        ci = c // 2
        for k in range(n_nl):
            prefix = f"NL_{s}.{k}"
            for part in ("g", "theta", "phi"):
                sd[f"{prefix}.{part}.weight"] = rng.normal(0, 1 / np.sqrt(c), (ci, c, 1, 1)).astype(
                    "float32"
                )
                sd[f"{prefix}.{part}.bias"] = rng.normal(0, 0.1, ci).astype("float32")
            sd[f"{prefix}.W.0.weight"] = rng.normal(0, 1 / np.sqrt(ci), (c, ci, 1, 1)).astype(
                "float32"
            )
            sd[f"{prefix}.W.0.bias"] = rng.normal(0, 0.1, c).astype("float32")
            bn(f"{prefix}.W.1", c, small=True)
    return sd


def torch_reference(
    sd,
    images,
    block_counts,
    last_stride=1,
    stride_in_1x1=False,
    stem_relu=True,
    non_local=(0, 0, 0, 0),
    stem_pool=True,
):
    """ResNet (+ AGW non-local) forward with `torch.nn.functional`, in float64, inference.

    `images`: `(N, H, W, 3)` RGB in [0, 255]. Returns `{"layer3", "layer4"}` channels-last.
    """
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in sd.items() if v.ndim}

    def bn(x, name):
        return F.batch_norm(
            x,
            t[f"{name}.running_mean"],
            t[f"{name}.running_var"],
            t[f"{name}.weight"],
            t[f"{name}.bias"],
            training=False,
            eps=1e-5,
        )

    def nl(x, name):
        b, _, h, w = x.shape
        ci = t[f"{name}.g.weight"].shape[0]

        def proj(part):
            return F.conv2d(x, t[f"{name}.{part}.weight"], t[f"{name}.{part}.bias"]).view(b, ci, -1)

        g_x = proj("g").permute(0, 2, 1)
        theta_x = proj("theta").permute(0, 2, 1)
        f = torch.matmul(theta_x, proj("phi"))
        y = torch.matmul(f / f.size(-1), g_x).permute(0, 2, 1).reshape(b, ci, h, w)
        return bn(F.conv2d(y, t[f"{name}.W.0.weight"], t[f"{name}.W.0.bias"]), f"{name}.W.1") + x

    x = (np.asarray(images, np.float64) - IMAGENET_MEAN) / IMAGENET_STD
    x = torch.from_numpy(x).permute(0, 3, 1, 2)
    x = bn(F.conv2d(x, t["conv1.weight"], stride=2, padding=3), "bn1")
    if stem_relu:
        x = F.relu(x)
    if stem_pool:
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    outputs = {}
    for s, n in enumerate(block_counts, start=1):
        stride = (1, 2, 2, last_stride)[s - 1]
        after = list(range(n - non_local[s - 1], n))
        for j in range(n):
            p = f"layer{s}.{j}"
            st = stride if j == 0 else 1
            s1, s3 = (st, 1) if stride_in_1x1 else (1, st)
            out = F.relu(bn(F.conv2d(x, t[f"{p}.conv1.weight"], stride=s1), f"{p}.bn1"))
            out = F.relu(
                bn(F.conv2d(out, t[f"{p}.conv2.weight"], stride=s3, padding=1), f"{p}.bn2")
            )
            out = bn(F.conv2d(out, t[f"{p}.conv3.weight"]), f"{p}.bn3")
            if f"{p}.downsample.0.weight" in t:
                shortcut = bn(
                    F.conv2d(x, t[f"{p}.downsample.0.weight"], stride=st), f"{p}.downsample.1"
                )
            else:
                shortcut = x
            x = F.relu(out + shortcut)
            if j in after:
                x = nl(x, f"NL_{s}.{after.index(j)}")
        outputs[f"layer{s}"] = x.permute(0, 2, 3, 1).numpy()
    return {"layer3": outputs["layer3"], "layer4": outputs["layer4"]}


def save_state_dict(sd, path):
    """Writes `sd` as a torch `.pth` (torch used as a plain library) or `.safetensors`."""
    if path.endswith(".safetensors"):
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, path)
    else:
        import torch

        torch.save({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, path)
    return path


def images(seed, shape):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def forward(model, x):
    """Inference outputs (`training=False`) as numpy.

    Eager on purpose: JAX caches each compiled op by shape, so the tiny backbones of these
    tests, which share shapes, compile once per process; a jitted `predict` would compile
    every new model afresh.
    """
    return keras.tree.map_structure(ops.convert_to_numpy, model(x, training=False))


@keras.saving.register_keras_serializable(package="keras_asanet_tests")
class NumpyHeNormal(keras.initializers.Initializer):
    """He-normal kernels drawn with numpy (test-only).

    Keras' random initializers compile one XLA program per kernel shape on JAX (about 0.3-0.5 s
    each on CPU); drawing with numpy keeps the backbone tests fast on every backend.
    """

    def __init__(self, seed=0):
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, shape, dtype=None):
        std = np.sqrt(2.0 / np.prod(shape[:-1]))
        return ops.convert_to_tensor(self._rng.normal(0, std, shape), dtype=dtype or "float32")

    def get_config(self):
        return {"seed": self.seed}


# ------------------------------------------------------------------------------------ tests


class AGWResNetTest(TestCase):
    def test_layer_behaviour(self):
        self.run_layer_test(
            AGWResNet,
            {**TINY, "non_local": (0, 1, 1, 0), "kernel_initializer": NumpyHeNormal()},
            images(0, (2, 61, 37, 3)),
            # 61 -> 31 (conv1) -> 16 (pool) -> 8 (layer2) -> 4 (layer3); 37 -> 19 -> 10 -> 5 -> 3
            expected_output_shape={"layer3": (2, 4, 3, 64), "layer4": (2, 4, 3, 128)},
            # Identity-initialised non-local blocks pass no gradient to their convolutions;
            # the next test checks gradients with non-zero non-local gamma.
            run_training_check=False,
        )

    def test_gradients_reach_every_weight(self):
        backbone = AGWResNet(
            **TINY,
            non_local=(0, 1, 1, 0),
            non_local_zero_init=False,
            kernel_initializer=NumpyHeNormal(),
        )
        x = images(0, (2, 61, 37, 3))
        backbone(x)
        weights = backbone.trainable_weights

        def loss_fn():
            outputs = backbone(x, training=True)
            return ops.sum(ops.sin(outputs["layer3"])) + ops.sum(ops.cos(outputs["layer4"]))

        grads = compute_gradients(loss_fn, weights)  # jitted on JAX
        # stem conv + BN; 4 projection blocks (4 convs, 4 BN); 2 identity blocks; 2 non-local.
        self.assertLen(weights, 3 + 4 * 12 + 2 * 9 + 2 * 10)
        for w, g in zip(weights, grads):
            g = self.to_numpy(g)
            self.assertTrue(np.all(np.isfinite(g)), w.path)
            self.assertGreater(np.abs(g).max(), 0.0, w.path)

    @parameterized.named_parameters(("stride_16", True, 16), ("stride_8", False, 8))
    def test_feature_cells_are_centred_on_stride_multiples(self, stem_pool, stride):
        """The feature at `(i, j)` of layer4 is centred on pixel `(stride * i, stride * j)`:
        its receptive field (the pixels that change it) is symmetric about that pixel. The
        ASRE mask score and the mask figures place cells there (`cell_windows(...,
        "centred")`), not on the tiles `[stride * i, stride * (i + 1))`."""
        backbone = AGWResNet(
            **TINY, stem_pool=stem_pool, non_local=(0, 0, 0, 0), kernel_initializer=NumpyHeNormal()
        )
        height, width = 12 * stride, 10 * stride
        x = images(1, (1, height, width, 3))
        base = self.to_numpy(backbone(x)["layer4"])[0]

        def receptive_field(axis, cell):
            """`(first, last)` pixel along `axis` whose change moves feature `cell` there."""
            size = (height, width)[axis]
            batch = np.repeat(x, size, axis=0)
            for p in range(size):  # clip p: the whole row / column p raised by 100
                index = (p, p) if axis == 0 else (p, slice(None), p)
                batch[index] += 100.0
            moved = np.abs(self.to_numpy(backbone(batch)["layer4"]) - base)
            moved = moved.max(axis=(-1, 2 - axis))[:, cell]  # (size,): the cell's change
            hit = np.flatnonzero(moved > 1e-5 * moved.max())  # float noise aside, 0 outside
            return int(hit[0]), int(hit[-1])

        for axis in (0, 1):
            for cell in (4, 5):  # interior cells: their fields lie inside the frame
                first, last = receptive_field(axis, cell)
                self.assertGreater(first, 0)
                self.assertLess(last, (height, width)[axis] - 1)
                self.assertEqual((first + last) / 2, stride * cell, (axis, cell, first, last))

    def test_default_is_agw_resnet50(self):
        backbone = AGWResNet()
        self.assertEqual(backbone.feature_channels, 1024)
        self.assertEqual(backbone.id_channels, 2048)
        self.assertEqual([len(s.blocks) for s in backbone.stages], [3, 4, 6, 3])
        self.assertEqual([s.non_local_after for s in backbone.stages], [[], [2, 3], [3, 4, 5], []])
        self.assertEqual([b.strides for b in backbone.id_branch.blocks], [1, 1, 1])
        self.assertEqual(
            backbone.compute_output_shape((None, 256, 128, 3)),
            {"layer3": (None, 16, 8, 1024), "layer4": (None, 16, 8, 2048)},
        )
        self.assertEqual(
            AGWResNet(last_stride=2).compute_output_shape((6, 256, 128, 3)),
            {"layer3": (6, 16, 8, 1024), "layer4": (6, 8, 4, 2048)},
        )
        self.assertEqual(
            AGWResNet(stem_pool=False).compute_output_shape((6, 64, 32, 3)),
            {"layer3": (6, 8, 4, 1024), "layer4": (6, 8, 4, 2048)},
        )
        self.assertEqual(
            AGWResNet(include_layer4=False).compute_output_shape((6, None, None, 3)),
            {"layer3": (6, None, None, 1024)},
        )

    @parameterized.named_parameters(
        ("pth_non_local_identity", ".pth", (0, 1, 2, 0), {}),
        ("safetensors", ".safetensors", (0, 0, 0, 0), {}),
        (
            "v1_last_stride2_no_stem_relu",
            ".pth",
            (0, 0, 0, 0),
            {"stride_in_1x1": True, "last_stride": 2, "stem_relu": False},
        ),
        ("no_stem_pool", ".pth", (0, 1, 1, 0), {"stem_pool": False}),
    )
    def test_matches_torch_reference(self, extension, non_local, options):
        sd = make_resnet_state_dict(1, num_classes=10, **TINY)
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "resnet" + extension))
        backbone = AGWResNet(**TINY, non_local=non_local, kernel_initializer="zeros", **options)
        report = load_resnet50_weights(backbone, path)
        num_float = sum(1 for k, v in sd.items() if v.ndim and not k.startswith("fc."))
        self.assertLen(report["loaded"], num_float)
        self.assertIn("fc.weight", report["ignored"])
        self.assertIn("layer1.0.bn1.num_batches_tracked", report["ignored"])
        self.assertEqual(report["missing"], [])
        x = images(2, (2, 61, 37, 3))
        expected = torch_reference(sd, x, TINY["block_counts"], **options)
        outputs = forward(backbone, x)
        self.assertGreater(np.abs(expected["layer4"]).max(), 0.1)
        self.assertAllClose(outputs, expected, atol=1e-4, rtol=1e-4)

    def test_agw_non_local_placement_and_weights(self):
        # AGW puts the non-local blocks after the LAST n blocks of a stage.
        blocks, non_local = TINY["block_counts"], (0, 2, 1, 0)
        sd = make_resnet_state_dict(3, non_local=non_local, **TINY)
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "agw.pth"))
        backbone = AGWResNet(**TINY, non_local=non_local, kernel_initializer="zeros")
        self.assertEqual(backbone.layer2.non_local_after, [0, 1])
        self.assertEqual(backbone.layer3.non_local_after, [1])
        report = load_resnet50_weights(backbone, path)
        self.assertIn("NL_3.0.W.1.running_var", report["loaded"])
        x = images(4, (2, 61, 37, 3))
        expected = torch_reference(sd, x, blocks, non_local=non_local)
        without = torch_reference(sd, x, blocks)
        self.assertGreater(np.abs(expected["layer3"] - without["layer3"]).max(), 1e-2)
        self.assertAllClose(forward(backbone, x), expected, atol=1e-4, rtol=1e-4)

    def test_without_layer4(self):
        sd = make_resnet_state_dict(5, num_classes=10, **TINY)
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "r.safetensors"))
        backbone = AGWResNet(
            **TINY, non_local=(0, 0, 0, 0), include_layer4=False, kernel_initializer="zeros"
        )
        report = load_resnet50_weights(backbone, path)
        self.assertIn("layer4.0.conv1.weight", report["ignored"])
        self.assertIsNone(backbone.id_branch)
        x = images(6, (2, 61, 37, 3))
        outputs = forward(backbone, x)
        self.assertEqual(list(outputs), ["layer3"])
        self.assertAllClose(
            outputs["layer3"], torch_reference(sd, x, TINY["block_counts"])["layer3"], atol=1e-4
        )
        self.assertAllClose(backbone.backbone_map(x), outputs["layer3"], atol=1e-6)
        with self.assertRaisesRegex(ValueError, "include_layer4"):
            backbone.id_map(outputs["layer3"])

    def test_ibn_in_every_block_of_stages_1_to_3_only(self):
        from keras_asanet.layers import InstanceBatchNormalization
        from keras_asanet.models import ASANet

        backbone = AGWResNet(**TINY, non_local=(0, 0, 0, 0), ibn=True)
        x = images(8, (2, 32, 16, 3))
        self.assertEqual(tuple(backbone.id_map(backbone.backbone_map(x)).shape), (2, 2, 1, 128))
        stages = [backbone.layer1, backbone.layer2, backbone.layer3, backbone.id_branch]
        for k, stage in enumerate(stages):
            for block in stage.blocks:
                self.assertEqual(isinstance(block.bn1, InstanceBatchNormalization), k < 3)
        self.assertIsInstance(backbone.bn1, keras.layers.BatchNormalization)  # the stem
        self.assertTrue(AGWResNet.from_config(backbone.get_config()).ibn)
        # A preset's backbone is updated, not replaced, by a `backbone` override.
        model = ASANet.from_preset("asanet_tiny", num_identities=4, backbone={"ibn": True})
        self.assertEqual(model.backbone_config["width"], 8)
        self.assertTrue(model.backbone_config["ibn"])

    def test_input_normalization(self):
        config = {**TINY, "non_local": (0, 0, 0, 0), "include_layer4": False}
        config["kernel_initializer"] = "zeros"
        x = images(7, (2, 61, 37, 3))
        raw = AGWResNet(**config, normalize_input=False)
        raw.build(x.shape)
        randomize_weights(raw, np.random.default_rng(0))
        for mode, manual in (
            ("torch", (x - IMAGENET_MEAN) / IMAGENET_STD),
            ("caffe", x[..., ::-1] - np.array([103.939, 116.779, 123.68])),
        ):
            backbone = AGWResNet(**config, normalization=mode)
            backbone.build(x.shape)
            backbone.set_weights(raw.get_weights())
            expected = forward(raw, manual.astype("float32"))
            scale = np.abs(expected["layer3"]).max()
            self.assertGreater(scale, 1.0)
            self.assertAllClose(forward(backbone, x), expected, atol=1e-5 * scale, rtol=1e-4)

    def test_stem_folds_the_normalization_into_its_convolution(self):
        # `_normalized_stem_conv` convolves raw pixels with a rescaled kernel and subtracts the
        # convolved mean frame: the same map as the stem convolution of normalised frames,
        # borders included (odd sizes: the padding differs on each side of the grid).
        x = images(9, (2, 61, 37, 3))
        for mode in ("torch", "caffe"):
            for data_format in ("channels_last", "channels_first"):
                backbone = AGWResNet(
                    **TINY,
                    non_local=(0, 0, 0, 0),
                    normalization=mode,
                    data_format=data_format,
                    include_layer4=False,
                )
                frames = x if data_format == "channels_last" else np.transpose(x, (0, 3, 1, 2))
                backbone.build(frames.shape)
                randomize_weights(backbone, np.random.default_rng(2))
                compute = backbone._to_compute(ops.convert_to_tensor(frames))
                folded = self.to_numpy(backbone._normalized_stem_conv(compute))
                explicit = self.to_numpy(
                    backbone.conv1(backbone.stem_pad(backbone._normalize(compute)))
                )
                scale = np.abs(explicit).max()
                self.assertGreater(scale, 1.0)
                self.assertAllClose(folded, explicit, atol=2e-6 * scale, rtol=1e-5)

    def test_training_calls_keep_the_explicit_normalization(self):
        # The fold is for inference. A training call computes what it did before the fold,
        # to the bit (so a seed's training run does not change): the same as a backbone
        # without normalisation fed the frames `_normalize` returns.
        config = {**TINY, "non_local": (0, 0, 0, 0), "include_layer4": False}
        x = images(11, (2, 33, 17, 3)).astype("float32")
        normalising = AGWResNet(**config)
        normalised = self.to_numpy(
            normalising._from_compute(
                normalising._normalize(normalising._to_compute(ops.convert_to_tensor(x)))
            )
        )
        raw = AGWResNet(**config, normalize_input=False)
        for backbone in (normalising, raw):
            backbone.build(x.shape)
        randomize_weights(raw, np.random.default_rng(3))
        normalising.set_weights(raw.get_weights())
        for training, exact in ((True, True), (False, False)):
            folded = self.to_numpy(normalising.backbone_map(x, training=training))
            expected = self.to_numpy(raw.backbone_map(normalised, training=training))
            if exact:
                np.testing.assert_array_equal(folded, expected)
            else:  # the inference fold: equal to rounding, not to the bit
                self.assertAllClose(folded, expected, atol=1e-4, rtol=1e-4)
                self.assertGreater(np.abs(folded - expected).max(), 0.0)

    def test_stem_keeps_the_explicit_normalization_under_mixed_precision(self):
        # Raw pixels in float16 would cost the stem's output several bits; mixed precision
        # normalises first, as before.
        x = images(10, (2, 32, 16, 3))
        backbone = AGWResNet(
            **TINY, non_local=(0, 0, 0, 0), include_layer4=False, dtype="mixed_float16"
        )
        backbone.build(x.shape)
        compute = backbone._to_compute(ops.cast(x, "float16"))
        folded = backbone._normalized_stem_conv(compute)
        explicit = backbone.conv1(backbone.stem_pad(backbone._normalize(compute)))
        self.assertEqual(keras.backend.standardize_dtype(folded.dtype), "float16")
        self.assertAllClose(folded, explicit, atol=0.0, rtol=0.0)

    def test_channels_first_matches_channels_last(self):
        # (The non-local block's channels-first path is tested in its own test.)
        config = {"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 0, 0, 0)}
        config["kernel_initializer"] = "zeros"
        x = images(8, (2, 61, 37, 3))
        last = AGWResNet(**config, data_format="channels_last")
        first = AGWResNet(**config, data_format="channels_first")
        last.build(x.shape)
        first.build((2, 3, 61, 37))
        randomize_weights(last, np.random.default_rng(1))
        first.set_weights(last.get_weights())
        out_first = forward(first, np.transpose(x, (0, 3, 1, 2)))
        out_last = forward(last, x)
        for key in ("layer3", "layer4"):
            self.assertAllClose(
                np.transpose(self.to_numpy(out_first[key]), (0, 2, 3, 1)),
                out_last[key],
                atol=1e-4,
                rtol=1e-4,
            )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "block_counts"):
            AGWResNet(block_counts=(3, 4, 6))
        with self.assertRaisesRegex(ValueError, "non_local"):
            AGWResNet(block_counts=(1, 1, 1, 1), non_local=(0, 2, 0, 0))
        with self.assertRaisesRegex(ValueError, "width=0"):
            AGWResNet(width=0)
        with self.assertRaisesRegex(ValueError, "last_stride=3"):
            AGWResNet(last_stride=3)
        with self.assertRaisesRegex(ValueError, "stem_pool=1"):
            AGWResNet(stem_pool=1)
        with self.assertRaisesRegex(ValueError, "normalization='tf'"):
            AGWResNet(normalization="tf")
        tiny = AGWResNet(block_counts=(1, 1, 1, 1), width=4, non_local=(0, 0, 0, 0))
        with self.assertRaisesRegex(ValueError, "3 \\(RGB\\) input channels"):
            tiny.build((1, 32, 32, 4))
        with self.assertRaisesRegex(ValueError, "fold the clip's T"):
            tiny.compute_output_shape((2, 6, 32, 32, 3))

    @pytest.mark.large
    def test_resnet50_matches_torch_reference(self):
        sd = make_resnet_state_dict(11)
        path = save_state_dict(sd, os.path.join(self.get_temp_dir(), "resnet50.safetensors"))
        backbone = AGWResNet(kernel_initializer="zeros")  # AGW defaults; weights come from file
        report = load_resnet50_weights(backbone, path)
        self.assertLen(report["loaded"], 265)  # torchvision's 320 keys - 53 counters - fc
        self.assertEqual(report["missing"], [])
        x = images(12, (1, 128, 64, 3))
        outputs = forward(backbone, x)
        self.assertEqual(tuple(outputs["layer3"].shape), (1, 8, 4, 1024))
        self.assertEqual(tuple(outputs["layer4"].shape), (1, 8, 4, 2048))
        # The non-local blocks are the identity at initialisation.
        expected = torch_reference(sd, x, (3, 4, 6, 3))
        self.assertAllClose(outputs, expected, atol=1e-4, rtol=1e-4)
