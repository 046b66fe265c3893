"""ASA-Net: the Attribute Salience Assisted Network for video person re-identification."""

from __future__ import annotations

import copy

import keras
from keras import ops

from keras_asanet.backbones.agw_resnet import AGWResNet
from keras_asanet.data.attributes import AttributeSchema
from keras_asanet.layers.asre import ASRE
from keras_asanet.layers.attribute_head import AttributeHead
from keras_asanet.layers.attribute_residual_branch import AttributeResidualBranch
from keras_asanet.layers.bn_neck import BNNeck
from keras_asanet.layers.feature_fusion import FeatureFusion
from keras_asanet.layers.spatio_temporal_pooling import SpatioTemporalPooling
from keras_asanet.losses.center_loss import CenterLoss, center_loss
from keras_asanet.losses.label_smoothing_cross_entropy import label_smoothing_cross_entropy
from keras_asanet.losses.multi_binary_attribute_loss import multi_binary_attribute_loss
from keras_asanet.losses.pmi_triplet_loss import pmi_triplet_loss
from keras_asanet.losses.weighted_regularization_triplet import weighted_regularization_triplet
from keras_asanet.models.asanet_presets import ASANET_PRESETS

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
_LOSS_TERMS = ("xent", "wrt", "center", "bce_re", "bce_ir", "pmi")


@keras.saving.register_keras_serializable(package="keras_asanet")
class ASANet(keras.Model):
    """ASA-Net (Chai et al.): a video re-ID model whose identity features are enhanced by
    attribute branches through ASRE attention and trained with the PMI triplet loss.

    Each clip `(T, H, W, 3)` goes frame by frame through the AGW ResNet backbone (stem +
    layer1-3, `C` channels); three residual branches follow (paper Eq. 1): the ID branch
    (layer4, last stride 1, `2C`) and two attribute branches, ID-relevant and ID-irrelevant
    (`C/2` each). 1x1 convolutions take the ID map to `C/4` three times: `F_re` and `F_ir` feed
    the two `ASRE` modules, whose masks come from the attribute maps (Eq. 8-10), and `F_ID`
    keeps the plain identity map (Eq. 6). Spatial GeM pooling and a temporal mean give the clip
    features; `W_re`, `W_ir`, `W_ID` reduce the three identity features to `branch_dim`, the
    attribute features feed the attribute heads (Eq. 3, 5), and `FeatureFusion` (strategy a
    or b, §III-D) forms `f_final`. A BNNeck (Eq. 16) classifies identities from
    `BN(f_final)`, whose output is also the test feature.

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
        branch_dim: width of `f_re_ID`, `f_ID`, `f_ir_ID` after `W_re`, `W_ID`, `W_ir`.
        fusion: `"a"` or `"b"` (§III-D).
        identity_branches: which of `("re", "id", "ir")` feed the fusion (Table IV).
        use_asre: apply ASRE (off: the plain `F_re(X_ID)` / `F_ir(X_ID)` maps, Table V).
        fuse_attribute_features: concatenate the attribute feature(s) into `f_final`.
        attribute_supervision: train the attribute heads with BCE (Table VII).
        pmi: use the PMI triplet loss (§III-C).
        eval_feature: `"bn"` (BNNeck output, default) or `"raw"` (`f_final`) at inference.
        center_loss_weight, bce_weight, pmi_weight: lambda_cent (1.5), lambda_BCE (0.0005) and
            the initial lambda_PMI (0.005) of Eq. 19. lambda_PMI is a non-trainable weight
            (`pmi_weight_variable`) so a callback can raise it and checkpoints keep it.
        label_smoothing: epsilon of the identity cross-entropy (0.1).
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
    model.compile(optimizer=keras_asanet.training.make_optimizer())
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
        branch_dim=256,
        fusion="a",
        identity_branches=("re", "id", "ir"),
        use_asre=True,
        fuse_attribute_features=True,
        attribute_supervision=True,
        pmi=True,
        eval_feature="bn",
        center_loss_weight=1.5,
        bce_weight=0.0005,
        pmi_weight=0.005,
        label_smoothing=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
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

        backbone_args = {k: v for k, v in self.backbone_config.items()}
        backbone_args.setdefault("last_stride", 1)
        self.backbone = AGWResNet(include_layer4=True, name="backbone", **backbone_args)
        channels = 16 * int(backbone_args.get("width", 64))
        self.backbone_channels = channels
        attr_width = channels // 2
        reduced = max(channels // 4, 1)

        self.re_attr_branch = AttributeResidualBranch(
            attr_width, num_blocks=self.attribute_branch_blocks, name="re_attr_branch"
        )
        self.ir_attr_branch = AttributeResidualBranch(
            attr_width, num_blocks=self.attribute_branch_blocks, name="ir_attr_branch"
        )
        self.f_re = keras.layers.Conv2D(reduced, 1, name="f_re")
        self.f_ir = keras.layers.Conv2D(reduced, 1, name="f_ir")
        self.f_id = keras.layers.Conv2D(reduced, 1, name="f_id")
        self.re_asre = ASRE(return_mask=True, name="re_asre")
        self.ir_asre = ASRE(return_mask=True, name="ir_asre")
        self.pool_re_id = SpatioTemporalPooling(name="pool_re_id")
        self.pool_ir_id = SpatioTemporalPooling(name="pool_ir_id")
        self.pool_id = SpatioTemporalPooling(name="pool_id")
        self.pool_re_attr = SpatioTemporalPooling(name="pool_re_attr")
        self.pool_ir_attr = SpatioTemporalPooling(name="pool_ir_attr")
        self.w_re = keras.layers.Dense(self.branch_dim, name="w_re")
        self.w_ir = keras.layers.Dense(self.branch_dim, name="w_ir")
        self.w_id = keras.layers.Dense(self.branch_dim, name="w_id")
        self.re_attr_head = AttributeHead(self.num_re_attributes, name="re_attr_head")
        self.ir_attr_head = AttributeHead(self.num_ir_attributes, name="ir_attr_head")
        self.feature_fusion = FeatureFusion(
            strategy=fusion,
            branches=self.identity_branches,
            use_attribute_features=self.fuse_attribute_features,
            name="feature_fusion",
        )
        self.bn_neck = BNNeck(self.num_identities or None, name="bn_neck")
        self.final_dim = self.branch_dim * len(self.identity_branches) + (
            attr_width if self.fuse_attribute_features else 0
        )
        self.center_loss = None
        if self.num_identities:
            self.center_loss = CenterLoss(self.num_identities, self.final_dim)
            self.class_centers = self.center_loss.centers_layer
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
            **kwargs: overrides of any `ASANet` argument.
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
        config.update(kwargs)
        model = cls(**config, name=kwargs.pop("name", preset))
        if pretrained_backbone is not None:
            from keras_asanet.backbones.resnet_weights import load_resnet50_weights

            model.build_for_input((None, None, 64, 32, 3))
            load_resnet50_weights(model.backbone, pretrained_backbone)
        return model

    # -------------------------------------------------------------------- build

    def build_for_input(self, input_shape=(None, 2, 64, 32, 3)):
        """Creates every weight by running a small dummy clip (any T / size works later)."""
        _, _, h, w, c = input_shape
        dummy = ops.zeros((1, 1, h or 64, w or 32, c or 3))
        self(dummy, training=False)
        return self

    def build(self, input_shape):
        # Keras' loader calls `build` before restoring weights; running a dummy clip creates
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
        shape = ops.shape(inputs)
        batch, frames = shape[0], shape[1]
        x = ops.reshape(inputs, (-1, shape[2], shape[3], shape[4]))
        x_origin = self.backbone.backbone_map(x, training=training)
        x_id = self.backbone.id_map(x_origin, training=training)
        x_re_attr = self.re_attr_branch(x_origin, training=training)
        x_ir_attr = self.ir_attr_branch(x_origin, training=training)
        x_i_re = self.f_re(x_id)
        x_i_ir = self.f_ir(x_id)
        x_id_id = self.f_id(x_id)
        re_enh, re_mask = self.re_asre([x_i_re, x_re_attr], training=training)
        ir_enh, ir_mask = self.ir_asre([x_i_ir, x_ir_attr], training=training)
        if not self.use_asre:
            re_enh, ir_enh = x_i_re, x_i_ir

        def unfold(t):
            s = ops.shape(t)
            return ops.reshape(t, (batch, frames, s[1], s[2], s[3]))

        f_re_id = self.w_re(self.pool_re_id(unfold(re_enh)))
        f_ir_id = self.w_ir(self.pool_ir_id(unfold(ir_enh)))
        f_id = self.w_id(self.pool_id(unfold(x_id_id)))
        f_re_attr = self.pool_re_attr(unfold(x_re_attr))
        f_ir_attr = self.pool_ir_attr(unfold(x_ir_attr))
        re_logits = self.re_attr_head(f_re_attr, training=training)
        ir_logits = self.ir_attr_head(f_ir_attr, training=training)
        f_final = self.feature_fusion(
            {
                "f_re_id": f_re_id,
                "f_id": f_id,
                "f_ir_id": f_ir_id,
                "f_re_attr": f_re_attr,
                "f_ir_attr": f_ir_attr,
            }
        )
        if self.num_identities:
            bn_feature, id_logits = self.bn_neck(f_final, training=training)
        else:
            bn_feature, id_logits = self.bn_neck(f_final, training=training), None
        feature = bn_feature if self.eval_feature == "bn" else f_final
        if return_dict is None:
            return_dict = bool(training) or self._inference_outputs == "dict"
        if return_dict:
            output = {
                "f_final": f_final,
                "f_re_attr": f_re_attr,
                "f_ir_attr": f_ir_attr,
                "re_attr_logits": re_logits,
                "ir_attr_logits": ir_logits,
                "feature": feature,
            }
            if id_logits is not None:
                output["id_logits"] = id_logits
        else:
            output = feature
        if return_masks:
            masks = {
                "re_mask": ops.reshape(re_mask, (batch, frames, *ops.shape(re_mask)[1:3])),
                "ir_mask": ops.reshape(ir_mask, (batch, frames, *ops.shape(ir_mask)[1:3])),
            }
            return output, masks
        return output

    def compute_output_shape(self, input_shape):
        dim = self.final_dim
        return (input_shape[0], dim)

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
            "center": ops.mean(center_loss(pids, out["f_final"], self.center_loss.centers)),
        }
        zero = ops.zeros((), "float32")
        if self.attribute_supervision:
            mask = ops.cast(y["attr_mask"], "float32")
            terms["bce_re"] = multi_binary_attribute_loss(y["re_attr"], out["re_attr_logits"], mask)
            terms["bce_ir"] = multi_binary_attribute_loss(y["ir_attr"], out["ir_attr_logits"], mask)
        else:
            terms["bce_re"] = terms["bce_ir"] = zero
        pmi_weight = ops.cast(self.pmi_weight_variable, "float32")
        terms["pmi"] = (
            pmi_triplet_loss(pids, out["f_final"], out["f_ir_attr"]) if self.pmi else zero
        )
        total = (
            terms["xent"]
            + terms["wrt"]
            + self.center_loss_weight * terms["center"]
            + self.bce_weight * (terms["bce_re"] + terms["bce_ir"])
            + (pmi_weight * terms["pmi"] if self.pmi else zero)
        )
        for name in _LOSS_TERMS:
            self._trackers[name].update_state(terms[name])
        self._trackers["pmi_weight"].update_state(pmi_weight)
        self._trackers["id_acc"].update_state(pids, out["id_logits"])
        if self.attribute_supervision:
            self._trackers["attr_acc"].update_state(
                _slot_accuracy(y, out["re_attr_logits"], out["ir_attr_logits"])
            )
        return total

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
                "branch_dim": self.branch_dim,
                "fusion": self.fusion,
                "identity_branches": list(self.identity_branches),
                "use_asre": self.use_asre,
                "fuse_attribute_features": self.fuse_attribute_features,
                "attribute_supervision": self.attribute_supervision,
                "pmi": self.pmi,
                "eval_feature": self.eval_feature,
                "center_loss_weight": self.center_loss_weight,
                "bce_weight": self.bce_weight,
                "pmi_weight": self.initial_pmi_weight,
                "label_smoothing": self.label_smoothing,
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
