"""The AGW ResNet-50 backbone of ASA-Net (torchvision layout, non-local blocks, last stride 1)."""

import keras
import numpy as np
from keras import ops

from keras_asanet.layers.bottleneck_block import (
    BottleneckBlock,
    _conv_output_size,
    torch_resnet_kernel_initializer,
)
from keras_asanet.layers.data_format import (
    compute_data_format,
    from_compute,
    shape_from_compute,
    shape_to_compute,
    to_compute,
)
from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization
from keras_asanet.layers.non_local_block_2d import NonLocalBlock2D
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import standardize_data_format

# ImageNet statistics on [0, 255] RGB input (torchvision's mean / std times 255).
_TORCH_MEAN = (0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0)
_TORCH_STD = (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)
# Caffe-style preprocessing of `keras.applications.ResNet50`: BGR order, mean subtracted.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

_NORMALIZATIONS = ("torch", "caffe")


class _ResNetStage(keras.layers.Layer):
    """One ResNet stage ("layerK"): bottleneck blocks, non-local blocks after the last few.

    Internal to `AGWResNet`, which recreates it from its own config.
    """

    def __init__(
        self,
        filters,
        num_blocks,
        strides,
        num_non_local,
        block_kwargs,
        non_local_kwargs,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.blocks = [
            BottleneckBlock(
                filters,
                strides=strides if i == 0 else 1,
                dtype=self.dtype_policy,
                name=f"block{i}",
                **block_kwargs,
            )
            for i in range(num_blocks)
        ]
        # AGW inserts the non-local blocks after the LAST `num_non_local` blocks.
        self.non_local_after = list(range(num_blocks - num_non_local, num_blocks))
        self.non_local_blocks = [
            NonLocalBlock2D(dtype=self.dtype_policy, name=f"non_local{k}", **non_local_kwargs)
            for k in range(num_non_local)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, block in enumerate(self.blocks):
            block.build(shape)
            shape = block.compute_output_shape(shape)
            if i in self.non_local_after:
                self.non_local_blocks[self.non_local_after.index(i)].build(shape)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for i, block in enumerate(self.blocks):
            x = call_sublayer(block, x, training=training)
            if i in self.non_local_after:
                non_local = self.non_local_blocks[self.non_local_after.index(i)]
                x = call_sublayer(non_local, x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            shape = block.compute_output_shape(shape)
        return shape


def _check_int_tuple(name, value, minimum):
    try:
        values = tuple(value)
    except TypeError:
        values = None
    if (
        values is None
        or len(values) != 4
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values)
        or any(v < minimum for v in values)
    ):
        raise ValueError(
            f"`{name}` must be 4 integers >= {minimum} (one per ResNet stage); "
            f"received {name}={value!r}."
        )
    return tuple(int(v) for v in values)


@keras.saving.register_keras_serializable(package="keras_asanet")
class AGWResNet(keras.Model):
    """The AGW ResNet-50 backbone: stem, layer1-3 with non-local blocks, and the ID branch.

    ASA-Net (paper §IV-B) is built on the AGW re-ID baseline: an ImageNet ResNet-50 whose
    layer2 and layer3 are followed by non-local blocks and whose last stage keeps stride 1.
    This model holds that network split the way ASA-Net uses it (paper Eq. 1):

    * the backbone `F_backbone` = stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) + layer1-3,
      producing `X_origin` with `C = 16 * width` channels (1024 for ResNet-50) at stride 16;
    * the ID branch `F_residual_ID` (`id_branch`) = ResNet layer4 with stride `last_stride`
      (1 in AGW / ASA-Net), producing `X_ID` with `2C` channels (2048).

    The layout is torchvision's ResNet-50 ("v1.5": the stride in the 3x3 convolution, PyTorch
    padding and pooling arithmetic, batch-norm epsilon 1e-5), so that torchvision ImageNet
    weights load name by name (`keras_asanet.backbones.load_resnet50_weights`) and give the
    same numbers. AGW's non-local blocks (`NonLocalBlock2D`, identity at initialisation) are
    inserted after the LAST `non_local[k]` blocks of each stage: with the default
    `(0, 2, 3, 0)`, after blocks 2 and 3 of layer2 and blocks 3, 4 and 5 of layer3 (0-based).
    They are not part of the ImageNet weights and keep their initialisation.

    `width` and `block_counts` shrink the network for CPU tests (e.g. `width=8`,
    `block_counts=(1, 1, 1, 1)`, then also `non_local=(0, 1, 1, 0)` or zeros: a stage cannot hold
    more non-local blocks than bottleneck blocks). The model works on frames; ASA-Net folds the
    clip's T frames into the batch before calling it.

    Input normalisation is part of the graph (so an exported model keeps it): with
    `normalize_input=True` the model expects **RGB in [0, 255]** and applies the ImageNet
    normalisation matching the weights (`normalization="torch"`: `(x / 255 - mean) / std`,
    torchvision weights; `"caffe"`: RGB -> BGR and the Caffe mean subtracted, the preprocessing
    `keras.applications.ResNet50` weights were trained with). With `normalize_input=False` the
    input is used as given.

    Known differences from AGW's released code, on purpose: AGW omits the ReLU after the stem
    batch norm (its `ResNetNL` comments it out) and its non-local block has 1 inner channel
    (`reduc_ratio // reduc_ratio`). Here the stem has the ReLU of torchvision's ResNet
    (`stem_relu=True`) and the non-local inner width is `C // 2`; both are options.

    Args:
        block_counts: 4 ints, bottleneck blocks per stage. Defaults to `(3, 4, 6, 3)`.
        width: int, stem width; stage k has inner width `width * 2**k` and output width
            `4 * width * 2**k`. Defaults to 64 (ResNet-50).
        non_local: 4 ints, non-local blocks after the last blocks of each stage. Defaults to
            `(0, 2, 3, 0)` (AGW).
        stem_pool: bool, whether the stem ends with ResNet's 3x3 stride-2 max pooling.
            Defaults to `True` (ResNet-50, needed for ImageNet weights to mean what they
            did). `False` halves the output stride (maps `H/8 x W/8`): on small frames
            (64x32) it gives ASRE and the pooling an 8x4 grid instead of 4x2.
        last_stride: int, stride of layer4 (the ID branch). Defaults to 1 (AGW / ASA-Net);
            2 is the ImageNet ResNet.
        include_layer4: bool, build the ID branch (layer4). Defaults to `True`.
        normalize_input: bool, apply the ImageNet input normalisation inside the model.
            Defaults to `True`.
        normalization: `"torch"` (default) or `"caffe"`, see above.
        stem_relu: bool, ReLU after the stem batch norm (torchvision). Defaults to `True`.
        stride_in_1x1: bool, ResNet v1 layout (stride in the first 1x1 convolution, as
            `keras.applications.ResNet50`). Defaults to `False` (v1.5, torchvision).
        non_local_reduction: int, non-local inner width is `C // non_local_reduction`.
            Defaults to 2.
        non_local_inter_channels: int or None, fixed non-local inner width (overrides the
            reduction; 1 reproduces AGW's released code).
        non_local_zero_init: bool, start non-local blocks as the identity. Defaults to `True`.
        kernel_initializer: initializer of the ResNet convolutions. Defaults to torchvision's.
        bn_epsilon: float. Defaults to `1e-5` (PyTorch).
        bn_momentum: float (Keras convention). Defaults to `0.9` (PyTorch `momentum=0.1`).
        ibn: bool, IBN-a: the first batch norm of every block in stages 1-3 becomes an
            `InstanceBatchNormalization` (half the channels instance-normalised), which makes
            the features less dependent on a camera's light and colour balance (IBN-Net;
            fast-reid's `with_ibn`). Defaults to `False` (the AGW / torchvision ResNet).
        data_format: `"channels_last"` or `"channels_first"`; `None` uses
            `keras.config.image_data_format()`. On TensorFlow without a GPU a channels-first
            layer computes channels-last inside (same weights), as TensorFlow's CPU
            convolutions may not support channels-first.
        **kwargs: base `keras.Model` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: frames `(N, H, W, 3)` (channels-last), RGB in [0, 255] when
            `normalize_input=True`.
        training: bool, batch statistics (`True`) or moving statistics.

    Returns:
        A dict: `"layer3"`, the backbone map `X_origin` `(N, H/16, W/16, 16 * width)`, and,
        when `include_layer4`, `"layer4"`, the ID-branch map `X_ID`
        `(N, H/16, W/16, 32 * width)` (`H/32` with `last_stride=2`). Sizes follow PyTorch's
        rounding: each stride-2 step maps `n` to `(n - 1) // 2 + 1`. The methods
        `backbone_map(frames)` and `id_map(backbone_map)` give the two maps separately.

    Example:

    >>> backbone = AGWResNet(width=8)  # narrow; the default width=64 is ResNet-50
    >>> maps = backbone(np.zeros((2, 64, 32, 3), "float32"))
    >>> tuple(maps["layer3"].shape), tuple(maps["layer4"].shape)
    ((2, 4, 2, 128), (2, 4, 2, 256))
    >>> resnet50 = AGWResNet()
    >>> load_resnet50_weights(resnet50, "resnet50-0676ba61.pth")  # doctest: +SKIP

    Reference:
        ASA-Net paper §III-A (Eq. 1: `F_backbone`, `F_residual_ID`) and §IV-B; Ye et al.,
        AGW baseline (TPAMI 2021); He et al., ResNet (CVPR 2016).
    """

    def __init__(
        self,
        block_counts=(3, 4, 6, 3),
        width=64,
        non_local=(0, 2, 3, 0),
        last_stride=1,
        stem_pool=True,
        include_layer4=True,
        normalize_input=True,
        normalization="torch",
        stem_relu=True,
        stride_in_1x1=False,
        non_local_reduction=2,
        non_local_inter_channels=None,
        non_local_zero_init=True,
        kernel_initializer=None,
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        ibn=False,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.block_counts = _check_int_tuple("block_counts", block_counts, 1)
        self.non_local = _check_int_tuple("non_local", non_local, 0)
        for k, (n_nl, n_blocks) in enumerate(zip(self.non_local, self.block_counts)):
            if n_nl > n_blocks:
                raise ValueError(
                    f"`non_local` asks for {n_nl} non-local blocks in stage {k + 1}, which has "
                    f"only {n_blocks} blocks; received non_local={non_local!r}, "
                    f"block_counts={block_counts!r}."
                )
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"`width` must be a positive integer; received width={width!r}.")
        if last_stride not in (1, 2) or isinstance(last_stride, bool):
            raise ValueError(f"`last_stride` must be 1 or 2; received last_stride={last_stride!r}.")
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {_NORMALIZATIONS}; received "
                f"normalization={normalization!r}."
            )
        self.width = width
        self.last_stride = int(last_stride)
        if not isinstance(stem_pool, bool):
            raise ValueError(
                f"`stem_pool` must be True or False; received stem_pool={stem_pool!r}."
            )
        self.stem_pool = stem_pool
        self.include_layer4 = bool(include_layer4)
        self.normalize_input = bool(normalize_input)
        self.normalization = normalization
        self.stem_relu = bool(stem_relu)
        self.stride_in_1x1 = bool(stride_in_1x1)
        self.non_local_reduction = non_local_reduction
        self.non_local_inter_channels = non_local_inter_channels
        self.non_local_zero_init = bool(non_local_zero_init)
        if kernel_initializer is None:
            kernel_initializer = torch_resnet_kernel_initializer()
        self.kernel_initializer = keras.initializers.serialize(
            keras.initializers.get(kernel_initializer)
        )
        self.bn_epsilon = float(bn_epsilon)
        self.bn_momentum = float(bn_momentum)
        self.ibn = bool(ibn)
        self.data_format = standardize_data_format(data_format)
        self._channel_axis = -1 if self.data_format == "channels_last" else 1
        # The format the layers inside run in: channels-last on TensorFlow-CPU, where
        # channels-first convolutions may be unsupported (see keras_asanet/layers/data_format.py).
        # Inputs are transposed once on the way in and the maps once on the way out.
        self._compute_format = compute_data_format(self.data_format)
        compute_channel_axis = -1 if self._compute_format == "channels_last" else 1

        #: Channels of the backbone map `X_origin` (C; 1024 for ResNet-50).
        self.feature_channels = 16 * width
        #: Channels of the ID-branch map `X_ID` (2C; 2048 for ResNet-50).
        self.id_channels = 32 * width

        self.stem_pad = keras.layers.ZeroPadding2D(
            3, data_format=self._compute_format, dtype=self.dtype_policy, name="stem_pad"
        )
        self.conv1 = keras.layers.Conv2D(
            width,
            7,
            strides=2,
            use_bias=False,
            kernel_initializer=keras.initializers.deserialize(self.kernel_initializer),
            data_format=self._compute_format,
            dtype=self.dtype_policy,
            name="conv1",
        )
        self.bn1 = FusedBatchNormalization(
            axis=compute_channel_axis,
            epsilon=self.bn_epsilon,
            momentum=self.bn_momentum,
            dtype=self.dtype_policy,
            name="bn1",
        )
        self.maxpool = keras.layers.MaxPooling2D(
            3, strides=2, padding="valid", data_format=self._compute_format,
            dtype=self.dtype_policy, name="maxpool",
        )  # fmt: skip
        block_kwargs = {
            "stride_in_1x1": self.stride_in_1x1,
            "kernel_initializer": self.kernel_initializer,
            "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
            "data_format": self._compute_format,
        }
        non_local_kwargs = {
            "reduction": non_local_reduction,
            "inter_channels": non_local_inter_channels,
            "zero_init": self.non_local_zero_init,
            "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
            "data_format": self._compute_format,
        }
        strides = (1, 2, 2, self.last_stride)

        def stage(k):
            # IBN-a: instance norm in the blocks of stages 1-3 only; layer4 stays batch norm.
            ibn_here = {"ibn": True} if self.ibn and k < 3 else {}
            return _ResNetStage(
                width * 2**k,
                self.block_counts[k],
                strides[k],
                self.non_local[k],
                {**block_kwargs, **ibn_here},
                non_local_kwargs,
                dtype=self.dtype_policy,
                name=f"layer{k + 1}",
            )

        self.layer1 = stage(0)
        self.layer2 = stage(1)
        self.layer3 = stage(2)
        #: ResNet layer4 = the ID branch of ASA-Net (`None` without `include_layer4`).
        self.id_branch = stage(3) if self.include_layer4 else None

    @property
    def stages(self):
        """The ResNet stages in order: layer1, layer2, layer3 and (if built) layer4."""
        stages = [self.layer1, self.layer2, self.layer3]
        if self.id_branch is not None:
            stages.append(self.id_branch)
        return stages

    # ------------------------------------------------------------------ shapes and build

    def _spatial_axes(self, data_format=None):
        data_format = data_format or self.data_format
        return (1, 2) if data_format == "channels_last" else (2, 3)

    def _to_compute(self, x):
        return to_compute(x, self.data_format, self._compute_format)

    def _from_compute(self, x):
        return from_compute(x, self.data_format, self._compute_format)

    def _check_input_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                "AGWResNet expects frames of rank 4, (N, H, W, 3) channels-last (fold the "
                f"clip's T into N); received input_shape={input_shape}."
            )
        channels = input_shape[self._channel_axis]
        if channels != 3:
            raise ValueError(
                f"AGWResNet expects 3 (RGB) input channels; received input_shape={input_shape}."
            )
        return input_shape

    def _stem_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in self._spatial_axes():
            # 7x7/2 conv (pad 3) then 3x3/2 max-pool (pad 1): both map n -> (n - 1) // 2 + 1.
            shape[axis] = _conv_output_size(shape[axis], 2)
            if self.stem_pool:
                shape[axis] = _conv_output_size(shape[axis], 2)
        shape[self._channel_axis] = self.width
        return tuple(shape)

    def build(self, input_shape):
        input_shape = self._check_input_shape(input_shape)
        compute_shape = shape_to_compute(input_shape, self.data_format, self._compute_format)
        shape = self.stem_pad.compute_output_shape(compute_shape)
        self.conv1.build(shape)
        shape = self.conv1.compute_output_shape(shape)
        self.bn1.build(shape)
        shape = self._stem_output_shape(input_shape)
        shape = shape_to_compute(shape, self.data_format, self._compute_format)
        for stage in self.stages:
            stage.build(shape)
            shape = stage.compute_output_shape(shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = self._check_input_shape(input_shape)
        shape = self._stem_output_shape(input_shape)
        shape = shape_to_compute(shape, self.data_format, self._compute_format)
        for stage in (self.layer1, self.layer2, self.layer3):
            shape = stage.compute_output_shape(shape)
        outputs = {"layer3": shape}
        if self.id_branch is not None:
            outputs["layer4"] = self.id_branch.compute_output_shape(shape)
        return {
            key: shape_from_compute(value, self.data_format, self._compute_format)
            for key, value in outputs.items()
        }

    # ------------------------------------------------------------------ forward

    def _normalization_constants(self):
        """`(mean, std, flip)` of the input normalisation `(P x - mean) / std`, per channel of
        the normalised input; `P` reverses the channels (RGB -> BGR) when `flip`; `std` is
        None where there is no division ("caffe")."""
        if self.normalization == "torch":
            return np.asarray(_TORCH_MEAN), np.asarray(_TORCH_STD), False
        return np.asarray(_CAFFE_BGR_MEAN), None, True

    def _normalize(self, x):
        """ImageNet normalisation of frames in the compute format."""
        channel_axis = -1 if self._compute_format == "channels_last" else 1
        shape = [1, 1, 1, 1]
        shape[channel_axis] = 3
        mean, std, flip = self._normalization_constants()
        if flip:
            x = ops.flip(x, axis=channel_axis)
        x = x - ops.convert_to_tensor(np.reshape(mean, shape), dtype=x.dtype)
        if std is not None:
            x = x / ops.convert_to_tensor(np.reshape(std, shape), dtype=x.dtype)
        return x

    def _normalized_stem_conv(self, x, training=None):
        """`conv1(pad(normalise(x)))` with the normalisation folded into the convolution.

        Why: the normalisation is two or three elementwise passes over the largest tensor of
        the network (the frames), which TensorFlow's graph and PyTorch run as separate
        kernels; folded, it costs a multiply over the 7x7 kernel and one convolution of a
        single frame (`docs/performance.md`: about an eighth of TensorFlow's extraction time
        on the tiny model). It is exact in real arithmetic: with `K'` the kernel divided by
        the std on its input channels (and those reversed for `"caffe"`), `conv(pad((P x -
        mean) / std), K) = conv(pad(x), K') - conv(pad(mean'), K')`, where the last term,
        the zero padding of the normalised frame seen from raw pixels, is the same for every
        frame of a size. Only at inference and where the compute dtype is float32: there the
        raw pixels cost about one bit of the output's precision; under mixed precision the
        explicit path stays. Training calls keep the explicit path too: the fold saves
        nothing measurable in a training step (the backward pass dominates), and the
        explicit path keeps a seed's training run the same, to the bit, as before the fold.
        """
        if training or self.compute_dtype != "float32":
            return call_sublayer(self.conv1, call_sublayer(self.stem_pad, self._normalize(x)))
        if not self.conv1.built:  # a model calling `backbone_map` builds its layers by use
            self.conv1.build(self.stem_pad.compute_output_shape(x.shape))
        mean, std, flip = self._normalization_constants()
        kernel = self.conv1.kernel
        if flip:  # channel c of the raw frame feeds normalised channel 2 - c
            mean = mean[::-1]
            kernel = ops.flip(kernel, axis=2)
        if std is not None:  # (the std of the torch normalisation, which does not flip)
            inverse = np.reshape(1.0 / std, (1, 1, 3, 1))
            kernel = kernel * ops.convert_to_tensor(inverse, "float32")
        channel_axis = -1 if self._compute_format == "channels_last" else 1
        shape = [1, 1, 1, 1]
        shape[channel_axis] = 3
        mean_frame = ops.ones_like(x[:1]) * ops.convert_to_tensor(
            np.reshape(mean, shape), "float32"
        )

        def conv(frames):
            return ops.conv(
                call_sublayer(self.stem_pad, frames),
                kernel,
                strides=2,
                padding="valid",
                data_format=self._compute_format,
            )

        return conv(x) - conv(mean_frame)

    def backbone_map(self, inputs, training=None):
        """Stem + layer1-3 (with their non-local blocks): frames -> `X_origin` (C channels)."""
        return self._from_compute(self._backbone_map(self._to_compute(inputs), training))

    def _backbone_map(self, inputs, training=None):
        if self.normalize_input:
            x = self._normalized_stem_conv(ops.cast(inputs, self.compute_dtype), training)
        else:
            x = call_sublayer(self.conv1, call_sublayer(self.stem_pad, inputs))
        x = call_sublayer(self.bn1, x, training=training)
        if self.stem_relu:
            x = ops.relu(x)
        # PyTorch's MaxPool2d(3, 2, padding=1) pads with -inf, so padding never wins the max.
        pad = [[0, 0], [0, 0], [0, 0], [0, 0]]
        for axis in self._spatial_axes(self._compute_format):
            pad[axis] = [1, 1]
        if self.stem_pool:
            x = call_sublayer(self.maxpool, ops.pad(x, pad, constant_values=float("-inf")))
        x = call_sublayer(self.layer1, x, training=training)
        x = call_sublayer(self.layer2, x, training=training)
        return call_sublayer(self.layer3, x, training=training)

    def id_map(self, backbone_map, training=None):
        """The ID branch (layer4): `X_origin` -> `X_ID` (2C channels)."""
        if self.id_branch is None:
            raise ValueError(
                "This AGWResNet was built with include_layer4=False and has no ID branch; "
                "expected include_layer4=True to call `id_map`."
            )
        x = call_sublayer(self.id_branch, self._to_compute(backbone_map), training=training)
        return self._from_compute(x)

    def call(self, inputs, training=None):
        x3 = self._backbone_map(self._to_compute(inputs), training=training)
        outputs = {"layer3": self._from_compute(x3)}
        if self.id_branch is not None:
            x4 = call_sublayer(self.id_branch, x3, training=training)
            outputs["layer4"] = self._from_compute(x4)
        return outputs

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
        }
        config.update(
            {
                "block_counts": list(self.block_counts),
                "width": self.width,
                "non_local": list(self.non_local),
                "last_stride": self.last_stride,
                "stem_pool": self.stem_pool,
                "include_layer4": self.include_layer4,
                "normalize_input": self.normalize_input,
                "normalization": self.normalization,
                "stem_relu": self.stem_relu,
                "stride_in_1x1": self.stride_in_1x1,
                "non_local_reduction": self.non_local_reduction,
                "non_local_inter_channels": self.non_local_inter_channels,
                "non_local_zero_init": self.non_local_zero_init,
                "kernel_initializer": self.kernel_initializer,
                "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum,
                "ibn": self.ibn,
                "data_format": self.data_format,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)
