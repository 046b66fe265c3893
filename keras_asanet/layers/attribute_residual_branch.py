"""The residual branch that turns the backbone map into an attribute feature map."""

import keras

from keras_asanet.layers.bottleneck_block import (
    BottleneckBlock,
    torch_resnet_kernel_initializer,
)
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import standardize_data_format


@keras.saving.register_keras_serializable(package="keras_asanet")
class AttributeResidualBranch(keras.layers.Layer):
    """A stack of bottleneck blocks mapping the backbone map to an attribute feature map.

    ASA-Net sends the backbone map `X_origin` (C channels) through three residual modules
    (paper Eq. 1): the ID branch (ResNet layer4, 2C channels, part of the backbone, see
    `AGWResNet`) and two attribute branches, ID-relevant and ID-irrelevant, whose maps
    `X_re_attr`, `X_ir_attr` have C/2 channels. This layer is one such attribute branch: a stack
    of `num_blocks` bottleneck blocks, the first with a projection shortcut from the input
    width to `filters` (and the stride, 1 by default so the map keeps the backbone's
    resolution), the others identity shortcuts. Its weights are randomly initialised (the
    paper starts the attribute branches from scratch).

    Args:
        filters: int, output channels (C/2 in ASA-Net); must be divisible by `expansion`.
            The inner width of each block is `filters // expansion`.
        num_blocks: int, number of bottleneck blocks. Defaults to 3 (as ResNet layer4).
        strides: int, stride of the first block. Defaults to 1.
        expansion: int, bottleneck expansion factor. Defaults to 4.
        kernel_initializer: convolution kernel initializer. Defaults to torchvision's ResNet
            initializer (`kaiming_normal_`, fan-out).
        bn_epsilon: float, batch-norm epsilon. Defaults to `1e-5`.
        bn_momentum: float, batch-norm momentum (Keras convention). Defaults to `0.9`.
        data_format: `"channels_last"` or `"channels_first"`; `None` uses
            `keras.config.image_data_format()`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: the backbone map, `(N, H, W, C)` channels-last (frames folded into `N`).
        training: bool, batch statistics (`True`) or moving statistics.

    Returns:
        The attribute map `(N, H', W', filters)`, `H' = (H - 1) // strides + 1`.

    Example:

    >>> branch = AttributeResidualBranch(filters=64)
    >>> tuple(branch(np.zeros((2, 16, 8, 128), "float32")).shape)
    (2, 16, 8, 64)

    Reference:
        ASA-Net paper §III-A, Eq. 1 (`F_residual_re`, `F_residual_ir`).
    """

    def __init__(
        self,
        filters,
        num_blocks=3,
        strides=1,
        expansion=4,
        kernel_initializer=None,
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("filters", filters),
            ("num_blocks", num_blocks),
            ("strides", strides),
            ("expansion", expansion),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}.")
        if filters % expansion:
            raise ValueError(
                f"`filters` must be divisible by `expansion`={expansion}; received "
                f"filters={filters}."
            )
        self.filters = filters
        self.num_blocks = num_blocks
        self.strides = strides
        self.expansion = expansion
        if kernel_initializer is None:
            kernel_initializer = torch_resnet_kernel_initializer()
        self.kernel_initializer = keras.initializers.serialize(
            keras.initializers.get(kernel_initializer)
        )
        self.bn_epsilon = float(bn_epsilon)
        self.bn_momentum = float(bn_momentum)
        self.data_format = standardize_data_format(data_format)
        self.blocks = [
            BottleneckBlock(
                filters // expansion,
                strides=strides if i == 0 else 1,
                expansion=expansion,
                kernel_initializer=self.kernel_initializer,
                bn_epsilon=self.bn_epsilon,
                bn_momentum=self.bn_momentum,
                data_format=self.data_format,
                dtype=self.dtype_policy,
                name=f"block{i}",
            )
            for i in range(num_blocks)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 4:
            raise ValueError(
                f"AttributeResidualBranch expects a 4-D input; received input_shape={shape}."
            )
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            x = call_sublayer(block, x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            shape = block.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "num_blocks": self.num_blocks,
                "strides": self.strides,
                "expansion": self.expansion,
                "kernel_initializer": self.kernel_initializer,
                "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum,
                "data_format": self.data_format,
            }
        )
        return config
