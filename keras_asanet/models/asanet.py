"""ASA-Net: the Attribute Salience Assisted Network for video person re-identification."""

from __future__ import annotations

import copy
import math
import numbers

import keras
from keras import ops

from keras_asanet.backbones.agw_resnet import AGWResNet
from keras_asanet.data.attributes import AttributeSchema
from keras_asanet.layers.asre import ASRE, SOFTMAX_AXES
from keras_asanet.layers.attribute_head import AttributeHead
from keras_asanet.layers.attribute_residual_branch import AttributeResidualBranch
from keras_asanet.layers.bn_neck import BNNeck
from keras_asanet.layers.feature_fusion import FeatureFusion
from keras_asanet.layers.spatio_temporal_pooling import TEMPORAL_MODES, SpatioTemporalPooling
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.losses.center_loss import center_loss
from keras_asanet.losses.class_centers import ClassCenters
from keras_asanet.losses.label_smoothing_cross_entropy import label_smoothing_cross_entropy
from keras_asanet.losses.multi_binary_attribute_loss import (
    check_positive_ratios,
    multi_binary_attribute_loss,
)
from keras_asanet.losses.pmi_triplet_loss import pmi_triplet_loss
from keras_asanet.losses.weighted_regularization_triplet import weighted_regularization_triplet
from keras_asanet.models.asanet_presets import ASANET_PRESETS
from keras_asanet.models.saved_layouts import legacy_centers

#: Training outputs of `ASANet` (the dict `call(..., training=True)` returns).
TRAINING_OUTPUTS = (
    "id_logits",
    "f_final",
    "f_re_attr",
    "f_ir_attr",
    "re_attr_logits",
    "ir_attr_logits",
    "feature",
)
_LOSS_TERMS = ("xent", "wrt", "center", "bce", "bce_re", "bce_ir", "pmi")

#: The two readings of the paper's "lambda_cent, lambda_BCE are set to 1.5 and 0.0005"
#: (DESIGN.md §3, docs/results.md): `printed` takes the sentence literally; `swapped` is the
#: AGW / Chen et al. balance (centre weight 0.0005 with the centre SGD lr 0.5, attribute BCE
#: weighted 1.5). `swapped` is the default because it wins the seeded ablation.
LOSS_WEIGHT_READINGS = {
    "printed": {"center_loss_weight": 1.5, "bce_weight": 0.0005},
    "swapped": {"center_loss_weight": 0.0005, "bce_weight": 1.5},
}
DEFAULT_LOSS_WEIGHTS = "swapped"
CHANNELS_LAST = "channels_last"
_IDENTITY_POOLING = ("avg", "gem")
#: The readings of which losses train the attribute branches (`attribute_branch_gradients`).
ATTRIBUTE_BRANCH_GRADIENTS = ("all_losses", "attribute_loss")


@keras.saving.register_keras_serializable(package="keras_asanet")
class ASANet(keras.Model):
    """ASA-Net (Chai et al.): a video re-ID model whose identity features are enhanced by
    attribute branches through ASRE attention and trained with the PMI triplet loss.

    Each clip `(T, H, W, 3)` goes frame by frame through the AGW ResNet backbone (stem +
    layer1-3, `C` channels); three residual branches follow (paper Eq. 1): the ID branch
    (layer4, last stride 1, `2C`) and two attribute branches, ID-relevant and ID-irrelevant
    (`C/2` each by default; `attribute_channels`). 1x1 convolutions take the ID map to `C/4`
    three times: `F_re` and `F_ir` feed the two `ASRE` modules, whose masks come from the
    attribute maps (Eq. 8-10), and `F_ID` keeps the plain identity map (Eq. 6). Spatial
    pooling (average for the three identity maps, GeM for the attribute maps;
    `identity_pooling`) and a temporal mean give the clip features; `W_re`, `W_ir`, `W_ID`
    reduce the three identity features to `branch_dim`, the attribute features feed the
    attribute heads (Eq. 3, 5), and `FeatureFusion` (strategy a or b, §III-D) forms
    `f_final`. A BNNeck (Eq. 16) classifies identities from `BN(f_final)`, whose output is
    also the test feature.

    Training (`model.fit`) uses `compute_loss`: `L = L_xent + L_wrt + lambda_cent L_cent +
    lambda_BCE L_BCE + lambda_PMI L_PMI` (Eq. 19), with the centres of the centre loss owned by
    the model (`class_centers`, variable path ending in `centers`) so `make_optimizer` gives
    them their own SGD. Every term, identity accuracy, attribute slot accuracy and the current
    `lambda_PMI` are tracked as metrics.

    Args:
        num_identities: training identities (classifier width); 0 or None builds no
            classifier (a model for feature extraction only).
        num_re_attributes: ID-relevant head width (MARS 32, Duke 25; see `AttributeSchema`).
        num_ir_attributes: ID-irrelevant head width (11: motion 5 + pose 6).
        backbone: dict of `AGWResNet` arguments (`block_counts`, `width`, `non_local`, ...).
        attribute_branch_blocks: bottleneck blocks per attribute branch (default 3).
        attribute_channels: channels of the two attribute maps `X_re_attr`, `X_ir_attr` (the
            attribute branches' output, and the width of the fused attribute feature); a
            multiple of 4 (the bottleneck expansion). None (default) is the paper's `C/2`
            (512 for ResNet-50). Wider branches help a narrow model's ID-relevant head: the
            synthetic main job uses `C` (docs/results.md).
        branch_dim: width of `f_re_ID`, `f_ID`, `f_ir_ID` after `W_re`, `W_ID`, `W_ir`.
        fusion: `"a"` or `"b"` (§III-D).
        identity_branches: which of `("re", "id", "ir")` feed the fusion (Table IV).
        use_asre: apply ASRE (off: the plain `F_re(X_ID)` / `F_ir(X_ID)` maps, Table V; the
            ASRE layers are then not built at all).
        fuse_attribute_features: concatenate the attribute feature(s) into `f_final`.
        attribute_supervision: train the attribute heads with BCE (Table VII); off builds no
            attribute heads.
        pmi: use the PMI triplet loss (§III-C); needs `attribute_supervision` (the PMI pairs
            are chosen in the supervised ID-irrelevant attribute space).
        identity_pooling: spatial pooling of the three signed identity maps (`"avg"`, the
            default, or `"gem"`, AGW's, whose clamp at `eps` drops the negative half of a
            signed map; see docs/results.md). The attribute maps are post-ReLU and keep GeM.
        asre_mask_activation: activation of both ASRE masks: `None` (linear, the paper's,
            default) or e.g. `"sigmoid"` (a mask in (0, 1); see `ASRE`).
        asre_softmax_over: the axis of both ASREs' attention softmax (Eq. 8 does not say):
            `"attribute_positions"` (default) or `"identity_positions"`; see `ASRE`.
        ir_attr_temporal: temporal pooling of the ID-irrelevant attribute map: `"mean"` (the
            paper's `F_TP`, default) or `"mean_std"` (the mean and the standard deviation
            over the frames, so the motion attributes, which are defined by change across
            frames, are visible to the head and to PMI's pair choice; `f_ir_attr` is then
            twice as wide; see `SpatioTemporalPooling`).
        attribute_branch_gradients: which losses train the two attribute branches:
            `"all_losses"` (default, the paper's: the identity losses reach them through
            ASRE's attention and through the fused attribute feature) or `"attribute_loss"`
            (ASRE and the fusion read the attribute maps and features through
            `stop_gradient`, so only the attribute BCE trains the branches; measured on the
            synthetic tuning seed: ID-irrelevant head +5 points, ID-relevant +0.3, mAP
            -1.5, see docs/results.md). The backbone below the branches is trained by every loss
            either way.
        attribute_head_dropout: float in [0, 1), dropout on the input feature of both
            attribute heads in training (`AttributeHead(dropout=...)`; not in the paper,
            default 0.0: none).
        attribute_positive_ratios: None (default: Eq. 18's unweighted BCE) or one float in
            [0, 1] per attribute slot, ID-relevant then ID-irrelevant
            (`num_re_attributes + num_ir_attributes`), the fraction of the annotated
            training tracklets with that slot on (`AttributeSchema.positive_ratios`); given,
            `L_BCE` is positive-ratio weighted (`keras_asanet.losses.positive_ratio_weights`,
            DeepMAR's weighting: not in the paper). The tracked `bce_re` / `bce_ir` stay
            unweighted, so the lambda_PMI switch's threshold keeps its meaning.
        eval_feature: `"bn"` (BNNeck output, default) or `"raw"` (`f_final`) at inference.
        center_loss_weight, bce_weight, pmi_weight: lambda_cent, lambda_BCE and the initial
            lambda_PMI (0.005) of Eq. 19. The defaults are the `"swapped"` reading of the
            paper (0.0005, 1.5); `LOSS_WEIGHT_READINGS["printed"]` is the literal one (1.5,
            0.0005). lambda_PMI is a non-trainable weight (`pmi_weight_variable`) so a
            callback can raise it and checkpoints keep it. `L_BCE` is the mean binary
            cross-entropy over the annotated tracklets of the batch and over every attribute
            slot of both heads jointly (32 + 11 on MARS).
        label_smoothing: epsilon of the identity cross-entropy (0.1).
        part_triplet_weight: weight of an extra WRT triplet term on each identity feature
            by itself (`f_re_ID`, `f_ID`, `f_ir_ID`, their mean), tracked as `part_wrt`;
            0 (default, the paper) adds nothing. Not in the paper: trained only beside the
            attribute feature, the identity features barely transfer to new identities and
            scenes (docs/results.md, "What carries the ranking").
        **kwargs: `keras.Model` arguments (`name`, `dtype`).

    Call arguments:
        inputs: clips `(B, T, H, W, 3)`, RGB float in [0, 255] (normalised inside).
        training: `True` returns the dict of training outputs; otherwise the feature.
        return_masks: also return the two ASRE masks, `(B, T, h, w)` each, as
            `(output, {"re_mask": ..., "ir_mask": ...})`.
        return_dict: force the dict of outputs (e.g. attribute logits at inference).

    Returns:
        Inference: the `(B, D)` evaluation feature. Training: a dict with `id_logits`,
        `f_final`, `f_re_attr`, `f_ir_attr`, `re_attr_logits`, `ir_attr_logits`, `feature`.

    Example:

    ```python
    model = ASANet.from_preset("asanet_tiny", num_identities=50, attribute_schema="mars")
    optimizer = keras_asanet.training.make_optimizer(center_loss_weight=model.center_loss_weight)
    model.compile(optimizer=optimizer)
    model.fit(train_clips_dataset, epochs=10)
    features = model.predict(clips)             # (B, D)
    ```

    Reference:
        Chai et al., "Video Person Re-identification using Attribute-enhanced Features",
        §III (Eq. 1-19).
    """

    def __init__(
        self,
        num_identities,
        num_re_attributes=32,
        num_ir_attributes=11,
        backbone=None,
        attribute_branch_blocks=3,
        attribute_channels=None,
        branch_dim=256,
        fusion="a",
        identity_branches=("re", "id", "ir"),
        use_asre=True,
        fuse_attribute_features=True,
        attribute_supervision=True,
        pmi=True,
        identity_pooling="avg",
        asre_mask_activation=None,
        asre_softmax_over="attribute_positions",
        ir_attr_temporal="mean",
        attribute_branch_gradients="all_losses",
        attribute_head_dropout=0.0,
        attribute_positive_ratios=None,
        eval_feature="bn",
        center_loss_weight=LOSS_WEIGHT_READINGS[DEFAULT_LOSS_WEIGHTS]["center_loss_weight"],
        bce_weight=LOSS_WEIGHT_READINGS[DEFAULT_LOSS_WEIGHTS]["bce_weight"],
        pmi_weight=0.005,
        label_smoothing=0.1,
        part_triplet_weight=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_arguments(
            num_identities,
            label_smoothing,
            center_loss_weight,
            bce_weight,
            pmi_weight,
            part_triplet_weight,
        )
        if eval_feature not in ("bn", "raw"):
            raise ValueError(f"eval_feature must be 'bn' or 'raw', got {eval_feature!r}.")
        for name, value in (
            ("num_re_attributes", num_re_attributes),
            ("num_ir_attributes", num_ir_attributes),
            ("branch_dim", branch_dim),
            ("attribute_branch_blocks", attribute_branch_blocks),
        ):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}.")
        self.num_identities = int(num_identities or 0)
        self.num_re_attributes = int(num_re_attributes)
        self.num_ir_attributes = int(num_ir_attributes)
        self.backbone_config = dict(backbone or {})
        self.attribute_branch_blocks = int(attribute_branch_blocks)
        self.attribute_channels = check_attribute_channels(attribute_channels)
        self.branch_dim = int(branch_dim)
        self.fusion = fusion
        self.identity_branches = tuple(identity_branches)
        self.use_asre = bool(use_asre)
        self.fuse_attribute_features = bool(fuse_attribute_features)
        self.attribute_supervision = bool(attribute_supervision)
        self.pmi = bool(pmi)
        self.eval_feature = eval_feature
        self.center_loss_weight = float(center_loss_weight)
        self.bce_weight = float(bce_weight)
        self.initial_pmi_weight = float(pmi_weight)
        self.label_smoothing = float(label_smoothing)
        self.part_triplet_weight = float(part_triplet_weight)

        if identity_pooling not in _IDENTITY_POOLING:
            raise ValueError(
                f"identity_pooling must be one of {_IDENTITY_POOLING}, got {identity_pooling!r}."
            )
        if self.pmi and not self.attribute_supervision:
            raise ValueError(
                "pmi=True needs attribute_supervision=True: the PMI triplets are chosen in the "
                "ID-irrelevant attribute space, which only the attribute BCE trains."
            )
        self.identity_pooling = identity_pooling
        if ir_attr_temporal not in TEMPORAL_MODES:
            raise ValueError(
                f"ir_attr_temporal must be one of {TEMPORAL_MODES}, got {ir_attr_temporal!r}."
            )
        self.ir_attr_temporal = ir_attr_temporal
        if asre_softmax_over not in SOFTMAX_AXES:
            raise ValueError(
                f"asre_softmax_over must be one of {SOFTMAX_AXES}, got {asre_softmax_over!r}."
            )
        self.asre_softmax_over = asre_softmax_over
        if attribute_branch_gradients not in ATTRIBUTE_BRANCH_GRADIENTS:
            raise ValueError(
                "attribute_branch_gradients must be one of "
                f"{ATTRIBUTE_BRANCH_GRADIENTS}, got {attribute_branch_gradients!r}."
            )
        self.attribute_branch_gradients = attribute_branch_gradients
        if isinstance(attribute_head_dropout, bool) or not (
            isinstance(attribute_head_dropout, (int, float)) and 0 <= attribute_head_dropout < 1
        ):
            raise ValueError(
                f"attribute_head_dropout must be a float in [0, 1), got {attribute_head_dropout!r}."
            )
        self.attribute_head_dropout = float(attribute_head_dropout)
        self.attribute_positive_ratios = (
            None
            if attribute_positive_ratios is None
            else check_positive_ratios(
                attribute_positive_ratios,
                self.num_re_attributes + self.num_ir_attributes,
                "attribute_positive_ratios",
            )
        )
        self.asre_mask_activation = (
            keras.activations.serialize(keras.activations.get(asre_mask_activation))
            if asre_mask_activation is not None
            else None
        )
        dtype = self.dtype_policy

        backbone_args = {k: v for k, v in self.backbone_config.items()}
        backbone_args.setdefault("last_stride", 1)
        # The clips are (B, T, H, W, 3) and every map inside is channels-last, whatever the
        # global keras.config.image_data_format() says (a layer left to the global setting
        # would read channels-first maps as channels-last ones).
        if backbone_args.setdefault("data_format", CHANNELS_LAST) != CHANNELS_LAST:
            raise ValueError(
                "ASANet computes channels-last (its clips are (B, T, H, W, 3)); got backbone "
                f"data_format={backbone_args['data_format']!r}. Leave it out (TensorFlow on "
                "CPU computes channels-last anyway)."
            )
        self.backbone = AGWResNet(
            include_layer4=True, name="backbone", dtype=dtype, **backbone_args
        )
        channels = 16 * int(backbone_args.get("width", 64))
        self.backbone_channels = channels
        attr_width = self.attribute_channels or channels // 2
        reduced = max(channels // 4, 1)
        branches = set(self.identity_branches)

        # Every switch is structural: a part that a variant does not use is not built, so it
        # costs no time, holds no weights and the parameter count is the variant's own.
        self.uses_re_asre = self.use_asre and "re" in branches
        self.uses_ir_asre = self.use_asre and "ir" in branches
        fuses_ir_attr = self.fuse_attribute_features and fusion == "b"
        self.uses_re_attr = (
            self.attribute_supervision or self.fuse_attribute_features or self.uses_re_asre
        )
        self.uses_ir_attr = self.attribute_supervision or fuses_ir_attr or self.uses_ir_asre

        def maybe(flag, make):
            return make() if flag else None

        self.re_attr_branch = maybe(
            self.uses_re_attr,
            lambda: AttributeResidualBranch(
                attr_width,
                num_blocks=self.attribute_branch_blocks,
                data_format=CHANNELS_LAST,
                dtype=dtype,
                name="re_attr_branch",
            ),
        )
        self.ir_attr_branch = maybe(
            self.uses_ir_attr,
            lambda: AttributeResidualBranch(
                attr_width,
                num_blocks=self.attribute_branch_blocks,
                data_format=CHANNELS_LAST,
                dtype=dtype,
                name="ir_attr_branch",
            ),
        )

        def conv(name):
            return keras.layers.Conv2D(
                reduced, 1, data_format=CHANNELS_LAST, dtype=dtype, name=name
            )

        def dense(name):
            return keras.layers.Dense(self.branch_dim, dtype=dtype, name=name)

        def pool(name, spatial, temporal="mean"):
            return SpatioTemporalPooling(
                spatial=spatial,
                temporal=temporal,
                data_format=CHANNELS_LAST,
                dtype=dtype,
                name=name,
            )

        def asre(name):
            return ASRE(
                return_mask=True,
                mask_activation=self.asre_mask_activation,
                softmax_over=self.asre_softmax_over,
                data_format=CHANNELS_LAST,
                dtype=dtype,
                name=name,
            )

        self.f_re = maybe("re" in branches, lambda: conv("f_re"))
        self.f_ir = maybe("ir" in branches, lambda: conv("f_ir"))
        self.f_id = maybe("id" in branches, lambda: conv("f_id"))
        self.re_asre = maybe(self.uses_re_asre, lambda: asre("re_asre"))
        self.ir_asre = maybe(self.uses_ir_asre, lambda: asre("ir_asre"))
        self.pool_re_id = maybe("re" in branches, lambda: pool("pool_re_id", identity_pooling))
        self.pool_ir_id = maybe("ir" in branches, lambda: pool("pool_ir_id", identity_pooling))
        self.pool_id = maybe("id" in branches, lambda: pool("pool_id", identity_pooling))
        self.pool_re_attr = maybe(self.uses_re_attr, lambda: pool("pool_re_attr", "gem"))
        self.pool_ir_attr = maybe(
            self.uses_ir_attr, lambda: pool("pool_ir_attr", "gem", self.ir_attr_temporal)
        )
        self.w_re = maybe("re" in branches, lambda: dense("w_re"))
        self.w_ir = maybe("ir" in branches, lambda: dense("w_ir"))
        self.w_id = maybe("id" in branches, lambda: dense("w_id"))
        self.re_attr_head = maybe(
            self.attribute_supervision,
            lambda: AttributeHead(
                self.num_re_attributes,
                dropout=self.attribute_head_dropout,
                dtype=dtype,
                name="re_attr_head",
            ),
        )
        self.ir_attr_head = maybe(
            self.attribute_supervision,
            lambda: AttributeHead(
                self.num_ir_attributes,
                dropout=self.attribute_head_dropout,
                dtype=dtype,
                name="ir_attr_head",
            ),
        )
        self.feature_fusion = FeatureFusion(
            strategy=fusion,
            branches=self.identity_branches,
            use_attribute_features=self.fuse_attribute_features,
            dtype=dtype,
            name="feature_fusion",
        )
        self.bn_neck = BNNeck(self.num_identities or None, dtype=dtype, name="bn_neck")
        self.final_dim = self.branch_dim * len(self.identity_branches) + (
            attr_width if self.fuse_attribute_features else 0
        )
        # The centres of the centre loss are the model's own weight (trained by its own SGD,
        # saved with it); the loss is the function `center_loss`. The layer name keeps the
        # variable path `center_loss_centers/centers` of files written before.
        self.class_centers = None
        if self.num_identities:
            self.class_centers = ClassCenters(
                self.num_identities, self.final_dim, name="center_loss_centers"
            )
            self.class_centers.build((None,))
        self.pmi_weight_variable = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_pmi_weight),
            trainable=False,
            name="pmi_weight",
        )
        self._inference_outputs = "feature"
        self._trackers = {
            name: keras.metrics.Mean(name=name) for name in (*_LOSS_TERMS, "pmi_weight")
        }
        if self.part_triplet_weight:
            self._trackers["part_wrt"] = keras.metrics.Mean(name="part_wrt")
        self._trackers["id_acc"] = keras.metrics.SparseCategoricalAccuracy(name="id_acc")
        self._trackers["attr_acc"] = keras.metrics.Mean(name="attr_acc")

    # ------------------------------------------------------------------ presets

    @classmethod
    def presets(cls):
        """Names and descriptions of the built-in architectures."""
        return {name: p["description"] for name, p in ASANET_PRESETS.items()}

    @classmethod
    def from_preset(
        cls, preset, num_identities, attribute_schema="mars", pretrained_backbone=None, **kwargs
    ):
        """Builds a named architecture.

        Args:
            preset: `"asanet_a"`, `"asanet_b"`, `"asanet_a_pmi"`, `"asanet_b_pmi"` (paper
                sizes, ResNet-50) or `"asanet_tiny"` (CPU-sized).
            num_identities: training identities.
            attribute_schema: an `AttributeSchema` or its name (`"mars"`, `"duke"`): sets the
                head widths.
            pretrained_backbone: optional local ImageNet ResNet-50 weights (torchvision
                `.pth` / `.safetensors` or `keras.applications` `.h5`), see
                `keras_asanet.backbones.load_resnet50_weights`.
            **kwargs: overrides of any `ASANet` argument (`name`, `dtype` included; a
                `backbone` dict updates the preset's backbone arguments, e.g.
                `backbone={"ibn": True}`), and
                `loss_weights="swapped" | "printed"` for the two readings of the paper's
                lambda_cent / lambda_BCE (`LOSS_WEIGHT_READINGS`).
        """
        if preset not in ASANET_PRESETS:
            raise ValueError(
                f"Unknown preset {preset!r}; expected one of {sorted(ASANET_PRESETS)}."
            )
        if isinstance(attribute_schema, str):
            attribute_schema = AttributeSchema.for_dataset(attribute_schema)
        config = copy.deepcopy(ASANET_PRESETS[preset]["config"])
        config.update(
            num_identities=num_identities,
            num_re_attributes=attribute_schema.id_relevant_dim,
            num_ir_attributes=attribute_schema.id_irrelevant_dim,
        )
        name = kwargs.pop("name", preset)
        loss_weights = kwargs.pop("loss_weights", None)
        if loss_weights is not None:
            if loss_weights not in LOSS_WEIGHT_READINGS:
                raise ValueError(
                    f"Unknown loss_weights {loss_weights!r}; expected one of "
                    f"{sorted(LOSS_WEIGHT_READINGS)}."
                )
            config.update(LOSS_WEIGHT_READINGS[loss_weights])
        if "backbone" in kwargs:  # updates the preset's backbone arguments, not replaces them
            config["backbone"] = {**config.get("backbone", {}), **(kwargs.pop("backbone") or {})}
        config.update(kwargs)
        model = cls(**config, name=name)
        if pretrained_backbone is not None:
            from keras_asanet.backbones.resnet_weights import load_resnet50_weights

            model.build_for_input((None, None, 64, 32, 3))
            load_resnet50_weights(model.backbone, pretrained_backbone)
        return model

    # -------------------------------------------------------------------- build

    def build_for_input(self, input_shape=(None, 2, 64, 32, 3)):
        """Creates every weight by tracing a one-frame clip symbolically (any T / size works
        later). Nothing is computed: an eager dummy clip made JAX compile each of the
        forward's operations one by one, about 7 s on a 2-core CPU."""
        _, _, h, w, c = input_shape
        clip = keras.KerasTensor((1, 1, h or 64, w or 32, c or 3), dtype=keras.config.floatx())
        self(clip, training=False, return_dict=True)  # the dict path builds the heads too
        # The call reaches the backbone through `backbone_map` / `id_map`, never through its
        # `__call__`, so Keras never marks it built although every layer inside it now is.
        # An unbuilt layer makes JAX's `predict_on_batch` run the whole model eagerly, op by
        # op, before every compiled batch (and `predict` once per call): evaluation then
        # took several times as long on JAX.
        self.backbone.built = True
        return self

    def build(self, input_shape):
        # Keras' loader calls `build` before restoring weights; tracing a dummy clip creates
        # every weight (the layers build on first call). `_building` stops the recursion of
        # `__call__` -> `build`.
        if getattr(self, "_building", False):
            return
        self._check_inputs(tuple(input_shape))
        self._building = True
        try:
            self.build_for_input(tuple(input_shape))
        finally:
            self._building = False
        self.built = True

    # --------------------------------------------------------------------- call

    def _check_inputs(self, inputs):
        shape = tuple(inputs) if isinstance(inputs, (tuple, list)) else tuple(inputs.shape)
        if len(shape) != 5:
            raise ValueError(
                f"ASANet expects clips of shape (batch, T, height, width, 3), got a rank-"
                f"{len(shape)} input of shape {shape}; add a time axis for single images."
            )
        if shape[-1] is not None and shape[-1] != 3:
            raise ValueError(f"ASANet expects RGB clips (3 channels), got {shape[-1]} channels.")
        if shape[1] is not None and shape[1] < 1:
            raise ValueError(
                f"ASANet needs at least one frame per clip (T >= 1), got T={shape[1]}."
            )

    def call(self, inputs, training=None, return_masks=False, return_dict=None):
        self._check_inputs(inputs)
        if return_masks and not (self.uses_re_asre or self.uses_ir_asre):
            raise ValueError(
                "return_masks=True needs ASRE, but this ASANet has use_asre=False (or no 're' "
                "/ 'ir' identity branch), so it computes no mask."
            )
        shape = ops.shape(inputs)
        batch, frames = shape[0], shape[1]
        x = ops.reshape(inputs, (-1, shape[2], shape[3], shape[4]))
        x_origin = self.backbone.backbone_map(x, training=training)
        x_id = self.backbone.id_map(x_origin, training=training)

        def unfold(t):
            s = ops.shape(t)
            return ops.reshape(t, (batch, frames, s[1], s[2], s[3]))

        def identity_view(t):
            # What the identity path (ASRE, fusion) reads of an attribute map or feature.
            if self.attribute_branch_gradients == "attribute_loss":
                return ops.stop_gradient(t)
            return t

        features, masks, attr_maps = {}, {}, {}
        for key, branch in (("re", self.re_attr_branch), ("ir", self.ir_attr_branch)):
            if branch is not None:
                attr_maps[key] = call_sublayer(branch, x_origin, training=training)
                features[f"f_{key}_attr"] = call_sublayer(
                    getattr(self, f"pool_{key}_attr"), unfold(attr_maps[key])
                )
        for key in ("re", "ir"):
            reduce = getattr(self, f"f_{key}")
            if reduce is None:
                continue
            identity_map = call_sublayer(reduce, x_id)
            asre = getattr(self, f"{key}_asre")
            if asre is not None:
                identity_map, masks[f"{key}_mask"] = call_sublayer(
                    asre, [identity_map, identity_view(attr_maps[key])], training=training
                )
            pooled = call_sublayer(getattr(self, f"pool_{key}_id"), unfold(identity_map))
            features[f"f_{key}_id"] = call_sublayer(getattr(self, f"w_{key}"), pooled)
        if self.f_id is not None:
            pooled = call_sublayer(self.pool_id, unfold(call_sublayer(self.f_id, x_id)))
            features["f_id"] = call_sublayer(self.w_id, pooled)
        f_final = self.feature_fusion(
            {k: identity_view(v) if k.endswith("_attr") else v for k, v in features.items()}
        )
        if self.num_identities:
            bn_feature, id_logits = call_sublayer(self.bn_neck, f_final, training=training)
        else:
            bn_feature = call_sublayer(self.bn_neck, f_final, training=training)
            id_logits = None
        feature = bn_feature if self.eval_feature == "bn" else f_final
        if return_dict is None:
            return_dict = bool(training) or self._inference_outputs == "dict"
        if return_dict:
            output = {"f_final": f_final, "feature": feature}
            for key in ("f_re_attr", "f_ir_attr"):
                if key in features:
                    output[key] = features[key]
            if self.attribute_supervision:
                output["re_attr_logits"] = call_sublayer(
                    self.re_attr_head, features["f_re_attr"], training=training
                )
                output["ir_attr_logits"] = call_sublayer(
                    self.ir_attr_head, features["f_ir_attr"], training=training
                )
            if id_logits is not None:
                output["id_logits"] = id_logits
        else:
            output = feature
        if return_masks:
            masks = {
                k: ops.reshape(m, (batch, frames, *ops.shape(m)[1:3])) for k, m in masks.items()
            }
            return output, masks
        return output

    def set_inference_outputs(self, kind):
        """What inference calls (`predict`, `predict_on_batch`, `model(x)`) return:
        `"feature"` (default) or `"dict"` (feature plus `re_attr_logits`, `ir_attr_logits`,
        `f_final`, ..., e.g. for `keras_asanet.evaluation.evaluate_model`)."""
        if kind not in ("feature", "dict"):
            raise ValueError(f"kind must be 'feature' or 'dict', got {kind!r}.")
        self._inference_outputs = kind
        self.predict_function = None  # recompile predict for the new outputs

    # --------------------------------------------------------------------- loss

    @property
    def metrics(self):
        return [*super().metrics, *self._trackers.values()]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Eq. 19 on a batch: `y` is the pipeline's targets dict (`pid`, `re_attr`, `ir_attr`,
        `attr_mask`); `y_pred` the training dict (recomputed from `x` in `evaluate`, where
        Keras passes the inference feature)."""
        if not self.num_identities:
            raise ValueError(
                "This ASANet has no identity classifier (num_identities=0): it cannot be trained."
            )
        if not isinstance(y, dict) or "pid" not in y:
            raise ValueError(
                "ASANet.fit/evaluate expect targets as a dict with at least 'pid' (and "
                "'re_attr', 'ir_attr', 'attr_mask' for attribute supervision), as "
                "keras_asanet.data.pipelines yield."
            )
        if not isinstance(y_pred, dict):
            y_pred = self(x, training=False, return_dict=True)
        out = {k: ops.cast(v, "float32") for k, v in y_pred.items()}
        pids = ops.cast(ops.reshape(y["pid"], (-1,)), "int32")
        terms = {
            "xent": ops.mean(
                label_smoothing_cross_entropy(pids, out["id_logits"], self.label_smoothing)
            ),
            "wrt": ops.mean(weighted_regularization_triplet(pids, out["f_final"])),
            "center": ops.mean(center_loss(pids, out["f_final"], self.class_centers.centers)),
        }
        zero = ops.zeros((), "float32")
        if self.attribute_supervision:
            for key in ("re_attr", "ir_attr", "attr_mask"):
                if key not in y:
                    raise ValueError(
                        f"attribute_supervision=True needs the target {key!r} (the pipelines "
                        "yield it when given an attribute schema); got targets "
                        f"{sorted(y)}. Train with attribute_supervision=False otherwise."
                    )
            mask = ops.cast(y["attr_mask"], "float32")
            # L_BCE: one mean over the annotated tracklets and every slot of both heads.
            terms["bce"] = multi_binary_attribute_loss(
                ops.concatenate([y["re_attr"], y["ir_attr"]], axis=-1),
                ops.concatenate([out["re_attr_logits"], out["ir_attr_logits"]], axis=-1),
                mask,
                positive_ratios=self.attribute_positive_ratios,
            )
            # The per-head means are tracked (bce_ir drives the lambda_PMI switch).
            terms["bce_re"] = multi_binary_attribute_loss(y["re_attr"], out["re_attr_logits"], mask)
            terms["bce_ir"] = multi_binary_attribute_loss(y["ir_attr"], out["ir_attr_logits"], mask)
        else:
            terms["bce"] = terms["bce_re"] = terms["bce_ir"] = zero
        pmi_weight = ops.cast(self.pmi_weight_variable, "float32")
        terms["pmi"] = (
            pmi_triplet_loss(pids, out["f_final"], out["f_ir_attr"]) if self.pmi else zero
        )
        total = (
            terms["xent"]
            + terms["wrt"]
            + self.center_loss_weight * terms["center"]
            + self.bce_weight * terms["bce"]
            + (pmi_weight * terms["pmi"] if self.pmi else zero)
        )
        if self.part_triplet_weight:
            terms["part_wrt"] = self._part_triplet(pids, out["f_final"])
            total = total + self.part_triplet_weight * terms["part_wrt"]
        for name in self._trackers:
            if name in terms:
                self._trackers[name].update_state(terms[name])
        self._trackers["pmi_weight"].update_state(pmi_weight)
        self._trackers["id_acc"].update_state(pids, out["id_logits"])
        if self.attribute_supervision:
            self._trackers["attr_acc"].update_state(
                _slot_accuracy(y, out["re_attr_logits"], out["ir_attr_logits"])
            )
        return total

    @property
    def feature_columns(self):
        """`{name: (start, stop)}`: the columns of `f_final` (and of the test feature, which
        the BNNeck normalises column by column) that each fused feature fills, in
        concatenation order: `f_re_id`, `f_id`, `f_ir_id` (those in `identity_branches`,
        `branch_dim` each), then `f_re_attr` (fusion a) or `attribute_fc` (fusion b, or an
        `attribute_dim` FC) when the attribute feature is fused."""
        fusion = self.feature_fusion
        columns, start = {}, 0
        for key in fusion.required_keys[: len(fusion.branches)]:
            columns[key] = (start, start + self.branch_dim)
            start += self.branch_dim
        if fusion.use_attribute_features:
            plain = fusion.strategy == "a" and fusion.attribute_dim is None
            columns["f_re_attr" if plain else "attribute_fc"] = (start, self.final_dim)
        return columns

    def _part_triplet(self, pids, f_final):
        """The mean WRT triplet loss of each identity feature by itself (its
        `feature_columns` of `f_final`): each must separate the identities on its own, not
        only beside the attribute feature."""
        identity = list(self.feature_columns.values())[: len(self.identity_branches)]
        losses = [
            ops.mean(weighted_regularization_triplet(pids, f_final[:, start:stop]))
            for start, stop in identity
        ]
        return ops.mean(ops.stack(losses))

    # ------------------------------------------------------------------- saving

    def load_own_variables(self, store):
        """Loads the model's own weights; in a file written before the centres moved into
        the model (`keras_asanet.models.saved_layouts`), the centres too, from where that
        file keeps them."""
        super().load_own_variables(store)
        centers = legacy_centers(store)
        if centers is None:
            return
        if self.class_centers is None:
            return  # a feature-extraction model: the file's centres are not used
        if tuple(centers.shape) != tuple(self.class_centers.centers.shape):
            raise ValueError(
                f"The file's centre table has shape {tuple(centers.shape)}, this ASANet's "
                f"{tuple(self.class_centers.centers.shape)} (num_identities x final_dim)."
            )
        self.class_centers.centers.assign(centers)
        # Keras then asks the layer for `class_centers/vars`, which the old file lacks.
        self.class_centers.skip_next_load()

    # ------------------------------------------------------------------- config

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_identities": self.num_identities,
                "num_re_attributes": self.num_re_attributes,
                "num_ir_attributes": self.num_ir_attributes,
                "backbone": self.backbone_config,
                "attribute_branch_blocks": self.attribute_branch_blocks,
                "attribute_channels": self.attribute_channels,
                "branch_dim": self.branch_dim,
                "fusion": self.fusion,
                "identity_branches": list(self.identity_branches),
                "use_asre": self.use_asre,
                "fuse_attribute_features": self.fuse_attribute_features,
                "attribute_supervision": self.attribute_supervision,
                "pmi": self.pmi,
                "identity_pooling": self.identity_pooling,
                "asre_mask_activation": self.asre_mask_activation,
                "asre_softmax_over": self.asre_softmax_over,
                "ir_attr_temporal": self.ir_attr_temporal,
                "attribute_branch_gradients": self.attribute_branch_gradients,
                "attribute_head_dropout": self.attribute_head_dropout,
                "attribute_positive_ratios": None
                if self.attribute_positive_ratios is None
                else list(self.attribute_positive_ratios),
                "eval_feature": self.eval_feature,
                "center_loss_weight": self.center_loss_weight,
                "bce_weight": self.bce_weight,
                "pmi_weight": self.initial_pmi_weight,
                "label_smoothing": self.label_smoothing,
                "part_triplet_weight": self.part_triplet_weight,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = config.get("backbone") or {}
        config["backbone"] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in backbone.items()
        }
        return cls(**config)


def check_attribute_channels(value):
    """`value` as an int, or None (the paper's C/2); anything but a positive multiple of 4 (the
    bottleneck expansion) raises ValueError. `RunConfig.validate` applies the same rule."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 4 or value % 4:
        raise ValueError(
            "attribute_channels must be None (the paper's C/2) or a positive multiple of 4 "
            f"(the bottleneck expansion), got {value!r}."
        )
    return int(value)


def _check_arguments(num_identities, label_smoothing, *weights):
    """Refuses arguments `int()` / `float()` would silently turn into another model (2.7
    identities into 2, a smoothing of 1 into a constant target, a negative weight into a
    loss term trained the wrong way)."""
    if num_identities is not None and (
        isinstance(num_identities, bool)
        or not isinstance(num_identities, numbers.Integral)
        or num_identities < 0
    ):
        raise ValueError(
            "num_identities must be a non-negative int (0 or None: no classifier), got "
            f"{num_identities!r}."
        )
    if (
        isinstance(label_smoothing, bool)
        or not isinstance(label_smoothing, numbers.Real)
        or not 0.0 <= label_smoothing < 1.0
    ):
        raise ValueError(f"label_smoothing must be a float in [0, 1), got {label_smoothing!r}.")
    names = ("center_loss_weight", "bce_weight", "pmi_weight", "part_triplet_weight")
    for name, value in zip(names, weights):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def _slot_accuracy(y, re_logits, ir_logits):
    """Mean over annotated tracklets of the fraction of attribute slots predicted right."""
    targets = ops.concatenate(
        [ops.cast(y["re_attr"], "float32"), ops.cast(y["ir_attr"], "float32")], axis=-1
    )
    logits = ops.concatenate([re_logits, ir_logits], axis=-1)
    correct = ops.cast(ops.equal(ops.cast(logits > 0, "float32"), targets), "float32")
    mask = ops.cast(y["attr_mask"], "float32")
    per_sample = ops.mean(correct, axis=-1)
    return ops.sum(per_sample * mask) / ops.maximum(ops.sum(mask), 1.0)
