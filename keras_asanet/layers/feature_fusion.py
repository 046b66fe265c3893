"""Fusion of ASA-Net's five clip features into the final feature `f_final` (§III-D)."""

import keras
from keras import ops

from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import check_positive_int, check_rank

# The call's input keys, in the order a list/tuple input gives them.
INPUT_KEYS = ("f_re_id", "f_id", "f_ir_id", "f_re_attr", "f_ir_attr")
# Identity branch name -> input key, in the order the features are concatenated.
_BRANCH_KEYS = {"re": "f_re_id", "id": "f_id", "ir": "f_ir_id"}
_STRATEGIES = ("a", "b")


@keras.saving.register_keras_serializable(package="keras_asanet")
class FeatureFusion(keras.layers.Layer):
    """Concatenates identity and attribute clip features into ASA-Net's final feature.

    ASA-Net produces five clip features: the ID-relevant-attribute-enhanced identity feature
    `f_re_ID`, the plain identity feature `f_ID`, the ID-irrelevant-attribute-enhanced identity
    feature `f_ir_ID`, and the two attribute features `f_re_attr` and `f_ir_attr`. The paper
    fuses them in one of two ways:

    - strategy `"a"`: `concat(f_re_ID, f_ID, f_ir_ID, f_re_attr)` (only the ID-relevant
      attribute feature is fused);
    - strategy `"b"`: `concat(f_re_ID, f_ID, f_ir_ID, FC(concat(f_re_attr, f_ir_attr)))` (early
      fusion of both attribute features through one fully connected layer).

    The dimension-reducing FC layers of the three identity features (`W_re`, `W_ID`, `W_ir`)
    belong to the branches and are applied before this layer. For the ablations of Tables IV-V
    the identity branches that take part can be chosen with `branches`, and the attribute
    part can be switched off with `use_attribute_features=False` (Table IV uses only the
    identity features). The concatenation order is always re, id, ir, attribute.

    Args:
        strategy: `"a"` or `"b"` (see above). Default `"a"`.
        attribute_dim: int >= 1 or None, the width of the attribute part of `f_final`.
            Strategy `"b"`: the output width of the FC layer; None (default) uses the width of
            `f_re_attr`. Strategy `"a"`: None (default, the paper) concatenates `f_re_attr`
            as it is; an int adds an FC projection of `f_re_attr` to that width.
        branches: a non-empty subset of `("re", "id", "ir")`: which identity features are
            concatenated. Default all three. Order does not matter.
        use_attribute_features: whether the attribute part is concatenated. Default True.
        kernel_initializer: initializer of the attribute FC layer.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a dict with keys `"f_re_id"`, `"f_id"`, `"f_ir_id"`, `"f_re_attr"`,
            `"f_ir_attr"`, each a `(B, D_k)` tensor; keys the configuration does not use may be
            missing (or None). A list/tuple of the five tensors in that order is also accepted
            (unused entries may be None).

            Required: the keys of the selected `branches`; `"f_re_attr"` when
            `use_attribute_features`; `"f_ir_attr"` too for strategy `"b"`.

    Returns:
        `f_final`, `(B, sum of the concatenated widths)`.

    Example:

    ```python
    import numpy as np
    from keras_asanet.layers import FeatureFusion

    batch = 4
    features = {
        "f_re_id": np.random.rand(batch, 256).astype("float32"),
        "f_id": np.random.rand(batch, 256).astype("float32"),
        "f_ir_id": np.random.rand(batch, 256).astype("float32"),
        "f_re_attr": np.random.rand(batch, 512).astype("float32"),
        "f_ir_attr": np.random.rand(batch, 512).astype("float32"),
    }
    f_final = FeatureFusion(strategy="b", attribute_dim=512)(features)  # (4, 1280)
    ablation = FeatureFusion(branches=("re", "id"), use_attribute_features=False)(
        {"f_re_id": features["f_re_id"], "f_id": features["f_id"]}
    )  # (4, 512)
    ```

    Reference:
        Eq. 7 and §III-D (Fig. 5) of Chai et al. (ASA-Net); branch ablations in Table IV,
        fusion strategies in Tables V-VI.
    """

    def __init__(
        self,
        strategy="a",
        attribute_dim=None,
        branches=("re", "id", "ir"),
        use_attribute_features=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if strategy not in _STRATEGIES:
            raise ValueError(
                f"`strategy` must be one of {_STRATEGIES}; received strategy={strategy!r}."
            )
        self.strategy = strategy
        self.attribute_dim = check_positive_int(attribute_dim, "attribute_dim", allow_none=True)
        if isinstance(branches, str):
            branches = (branches,)
        branches = tuple(branches)
        unknown = [b for b in branches if b not in _BRANCH_KEYS]
        if unknown or len(set(branches)) != len(branches):
            raise ValueError(
                "`branches` must hold distinct names from ('re', 'id', 'ir'); received "
                f"branches={branches!r}."
            )
        if not branches:
            raise ValueError(
                "`branches` must name at least one identity branch ('re', 'id', 'ir'); "
                "received branches=()."
            )
        # Canonical order: the concatenation order does not depend on how the user lists them.
        self.branches = tuple(b for b in _BRANCH_KEYS if b in branches)
        self.use_attribute_features = bool(use_attribute_features)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    # ------------------------------------------------------------------ inputs

    @property
    def required_keys(self):
        """The input keys this configuration reads, in concatenation order."""
        keys = [_BRANCH_KEYS[b] for b in self.branches]
        if self.use_attribute_features:
            keys.append("f_re_attr")
            if self.strategy == "b":
                keys.append("f_ir_attr")
        return tuple(keys)

    def _as_dict(self, inputs, what="inputs"):
        """Normalises a dict / list / tuple of tensors (or shapes) to a dict by key."""
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - set(INPUT_KEYS))
            if unknown:
                raise ValueError(
                    f"FeatureFusion got unknown keys {unknown} in its {what}; expected keys from "
                    f"{INPUT_KEYS}."
                )
            inputs = dict(inputs)
        elif isinstance(inputs, (list, tuple)) and len(inputs) == len(INPUT_KEYS):
            inputs = dict(zip(INPUT_KEYS, inputs))
        else:
            raise ValueError(
                f"FeatureFusion expects {what} as a dict with keys from {INPUT_KEYS} or a "
                f"list of 5 in that order; received a {type(inputs).__name__}."
            )
        missing = [k for k in self.required_keys if inputs.get(k) is None]
        if missing:
            raise ValueError(
                f"FeatureFusion(strategy={self.strategy!r}, branches={self.branches!r}, "
                f"use_attribute_features={self.use_attribute_features}) requires {what} "
                f"{list(self.required_keys)}; missing {missing}."
            )
        return inputs

    def _feature_shapes(self, input_shape):
        shapes = self._as_dict(input_shape, "input shapes")
        result = {}
        for key in self.required_keys:
            shape = check_rank(shapes[key], 2, "FeatureFusion", argument=key)
            if shape[-1] is None:
                raise ValueError(
                    f"The feature axis of `{key}` of FeatureFusion must be known; "
                    f"received shape {shape}."
                )
            result[key] = shape
        return result

    def _attribute_width(self, shapes):
        if not self.use_attribute_features:
            return 0
        if self.attribute_dim is not None:
            return self.attribute_dim
        return shapes["f_re_attr"][-1]

    # ------------------------------------------------------------------ layer API

    def build(self, input_shape):
        shapes = self._feature_shapes(input_shape)
        self.attribute_dense = None
        if self.use_attribute_features and (self.strategy == "b" or self.attribute_dim):
            in_width = shapes["f_re_attr"][-1]
            if self.strategy == "b":
                in_width += shapes["f_ir_attr"][-1]
            self.attribute_dense = keras.layers.Dense(
                self._attribute_width(shapes),
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name="attribute_dense",
            )
            self.attribute_dense.build((None, in_width))
        self.built = True

    def call(self, inputs):
        inputs = self._as_dict(inputs)
        for key in self.required_keys:
            check_rank(inputs[key].shape, 2, "FeatureFusion", argument=key)
        parts = [inputs[_BRANCH_KEYS[b]] for b in self.branches]
        if self.use_attribute_features:
            if self.strategy == "b":
                attributes = ops.concatenate([inputs["f_re_attr"], inputs["f_ir_attr"]], axis=-1)
            else:
                attributes = inputs["f_re_attr"]
            if self.attribute_dense is not None:
                attributes = call_sublayer(self.attribute_dense, attributes)
            parts.append(attributes)
        if len(parts) == 1:
            return parts[0]
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        shapes = self._feature_shapes(input_shape)
        width = sum(shapes[_BRANCH_KEYS[b]][-1] for b in self.branches)
        width += self._attribute_width(shapes)
        batch = next(iter(shapes.values()))[0]
        return (batch, width)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "strategy": self.strategy,
                "attribute_dim": self.attribute_dim,
                "branches": list(self.branches),
                "use_attribute_features": self.use_attribute_features,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
