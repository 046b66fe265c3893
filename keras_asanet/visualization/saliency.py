"""Grad-CAM of the identity score, on every backend: which parts of each frame raise the
logit of an identity.

Grad-CAM (Selvaraju et al., ICCV 2017) weights the channels of a feature map `A` by the
spatial mean of `d score / d A` and keeps the positive part of the weighted sum:
`relu(sum_c mean_hw(dS/dA_c) * A_c)`. Here the score is an identity logit of the model's
classifier (the BNNeck's `id_logits` for an ASA-Net), and `A` is read inside the model by a
*tap*: while the model runs, the method that computes the map (the ASA-Net backbone's
`backbone_map` or `id_map`, or a layer's `call` in any other Keras model) is wrapped so that
its output passes through a function the gradient helper provides. The gradient itself is the
only backend-specific step, in `keras_asanet.visualization.backend_gradients`; everything here
is `keras.ops` and numpy.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from keras_asanet.visualization._figures import save_figure

#: The ASA-Net feature maps Grad-CAM can tap: the backbone's stem + layer1-3 output
#: (`X_origin`, which feeds all three branches) and the ID branch's layer4 output (`X_ID`).
ASANET_FEATURES = ("backbone_map", "id_map")


@dataclasses.dataclass
class GradCAM:
    """What `grad_cam` computed.

    Attributes:
        maps: `(B, N, h, w)` float64 in [0, 1]: for each clip of the batch, the Grad-CAM of
            each of its `N` frames (`N = T` for an ASA-Net, 1 for a per-image map), divided
            by the clip's largest value (a clip whose map is zero stays zero).
        class_index: `(B,)` int64 identity class explained for each clip.
        scores: `(B,)` float64 logit of that class.
        feature: which feature map was tapped.
    """

    maps: np.ndarray
    class_index: np.ndarray
    scores: np.ndarray
    feature: str


def grad_cam_maps(activations, gradients):
    """Grad-CAM from a feature map and the score's gradient at it (channels last).

    Args:
        activations: `(M, h, w, C)` feature maps.
        gradients: `(M, h, w, C)` `d score / d activations`.

    Returns:
        `(M, h, w)` float64 `relu(sum_c mean_hw(gradients)_c * activations_c)` (not
        normalised).

    Example:

    >>> import numpy as np
    >>> a = np.zeros((1, 2, 2, 1)); a[0, 1, 0, 0] = 3.0
    >>> grad_cam_maps(a, np.ones_like(a))[0].tolist()
    [[0.0, 0.0], [3.0, 0.0]]
    """
    a = np.asarray(activations, np.float64)
    g = np.asarray(gradients, np.float64)
    if a.ndim != 4 or a.shape != g.shape:
        raise ValueError(
            f"activations and gradients must both be (M, h, w, C), got {a.shape} and {g.shape}."
        )
    weights = g.mean(axis=(1, 2))
    return np.maximum(np.einsum("mhwc,mc->mhw", a, weights), 0.0)


@contextlib.contextmanager
def _tapped(owner, method, tap):
    """Within the block, `owner.<method>(...)` returns `tap(original output)`."""
    original = getattr(owner, method)

    def wrapped(*args, **kwargs):
        return tap(original(*args, **kwargs))

    # object.__setattr__: past Keras' / torch's attribute tracking; the instance attribute
    # shadows the class's method until it is deleted again.
    object.__setattr__(owner, method, wrapped)
    try:
        yield
    finally:
        object.__delattr__(owner, method)


def _target(model, feature):
    """`(owner, method, run)`: where the map is computed and how the logits are obtained."""
    from keras_asanet.evaluation.asanet_evaluation import is_asanet

    if is_asanet(model):
        if feature not in ASANET_FEATURES:
            raise ValueError(
                f"feature must be one of {ASANET_FEATURES} for an ASANet, got {feature!r}."
            )
        if not model.num_identities:
            raise ValueError(
                "Grad-CAM explains an identity logit, but this ASANet has no identity "
                "classifier (num_identities=0)."
            )

        def run(clips):
            return model(clips, training=False, return_dict=True)["id_logits"]

        return model.backbone, feature, run
    layer = feature if not isinstance(feature, str) else model.get_layer(feature)

    def run(clips):
        out = model(clips, training=False)
        if isinstance(out, dict):
            out = out.get("id_logits", out.get("logits"))
        return out

    return layer, "call", run


def grad_cam(model, clips, class_index=None, feature="backbone_map"):
    """Grad-CAM of identity logits with respect to a feature map inside the model.

    Works on the JAX, PyTorch and TensorFlow backends (one gradient helper each, in
    `backend_gradients`); on JAX the whole step is compiled once per call.

    Args:
        model: an `ASANet` with an identity classifier, or any Keras model returning `(B, K)`
            logits (or a dict with `"id_logits"` / `"logits"`).
        clips: `(B, ...)` model input, e.g. `(B, T, H, W, 3)` clips in [0, 255].
        class_index: the class explained for each clip: an int, a `(B,)` sequence, or `None`
            for each clip's highest logit.
        feature: for an ASA-Net `"backbone_map"` (default, `X_origin`, before the three
            branches) or `"id_map"` (layer4, `X_ID`); for another model the name of a layer
            (or the layer) whose `(M, h, w, C)` channels-last output is explained, `M` a
            multiple of `B` (frames folded into the batch).

    Returns:
        A `GradCAM`.

    Example:

    >>> cam = grad_cam(model, clips)          # doctest: +SKIP
    >>> cam.maps.shape                        # (B, T, h, w)  # doctest: +SKIP
    """
    from keras import ops

    from keras_asanet.visualization.backend_gradients import gradient_at_tap

    clips = np.asarray(clips, np.float32)
    batch = clips.shape[0]
    owner, method, run = _target(model, feature)
    fixed = None
    if class_index is not None:
        fixed = np.broadcast_to(np.asarray(class_index, np.int64), (batch,)).copy()

    def forward(tap):
        with _tapped(owner, method, tap):
            logits = ops.cast(run(clips), "float32")
        if len(ops.shape(logits)) != 2:
            raise ValueError(f"Grad-CAM needs (B, K) logits, got shape {ops.shape(logits)}.")
        chosen = ops.argmax(logits, axis=-1) if fixed is None else ops.convert_to_tensor(fixed)
        picked = ops.sum(logits * ops.one_hot(chosen, ops.shape(logits)[-1]), axis=-1)
        return ops.sum(picked), (picked, chosen)

    _, activations, gradients, (scores, chosen) = gradient_at_tap(forward, model.variables)
    if activations.ndim != 4 or activations.shape[0] % batch:
        raise ValueError(
            f"The tapped map {feature!r} has shape {activations.shape}; Grad-CAM needs "
            f"(M, h, w, C) channels-last maps with M a multiple of the batch ({batch})."
        )
    maps = grad_cam_maps(activations, gradients)
    maps = maps.reshape(batch, -1, *maps.shape[1:])
    peak = maps.max(axis=(1, 2, 3), keepdims=True)
    maps = np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)
    return GradCAM(
        maps=maps,
        class_index=np.asarray(chosen, np.int64).reshape(batch),
        scores=np.asarray(scores, np.float64).reshape(batch),
        feature=feature if isinstance(feature, str) else feature.name,
    )


def plot_model_grad_cam(
    model,
    tracklet,
    seq_len=6,
    image_size=None,
    class_index=None,
    feature="backbone_map",
    alpha=0.5,
    path=None,
):
    """Grad-CAM of an ASA-Net's identity score over `seq_len` evenly spaced frames of one
    tracklet (drawn like the mask overlays, with the ground-truth person outlined when the
    dataset has label maps).

    Args:
        model: an `ASANet` with an identity classifier (or a model `grad_cam` accepts that
            takes `(1, T, H, W, 3)` clips).
        tracklet: a `Tracklet`.
        seq_len: frames (one clip).
        image_size: `(height, width)` of the frames; default the model's input size if
            fixed, else 256 x 128 (`resolve_image_size`).
        class_index: the identity class explained, or `None` for the highest logit.
        feature: the tapped map (see `grad_cam`).
        alpha: opacity of the map.
        path: where to write the figure as PNG, or `None`.

    Returns:
        The `matplotlib.figure.Figure` of `plot_mask_overlay` with one `"Grad-CAM"` row;
        `fig.grad_cam` holds the `GradCAM` (a batch of one clip).

    Example:

    >>> fig = plot_model_grad_cam(model, dataset.query[0], seq_len=4, image_size=(64, 32))
    ... # doctest: +SKIP
    """
    return plot_model_grad_cams(
        model, [tracklet], seq_len, image_size, class_index, feature, alpha, [path]
    )[0]


def plot_model_grad_cams(
    model,
    tracklets,
    seq_len=6,
    image_size=None,
    class_index=None,
    feature="backbone_map",
    alpha=0.5,
    paths=None,
):
    """`plot_model_grad_cam` for several tracklets with one gradient computation (a batch of
    clips: on JAX, one compilation).

    Args:
        model, seq_len, image_size, class_index, feature, alpha: as `plot_model_grad_cam`
            (`class_index` may also be one class per tracklet).
        tracklets: the `Tracklet`s.
        paths: one PNG path (or `None`) per tracklet, or `None` to write nothing.

    Returns:
        A list of figures, one per tracklet; `fig.grad_cam` is the `GradCAM` of the batch.
    """
    from keras_asanet.data.frame_sampling import evenly_spaced
    from keras_asanet.data.image_io import read_frame
    from keras_asanet.evaluation.feature_extraction import resolve_image_size
    from keras_asanet.visualization.mask_overlay import ground_truth_person, plot_mask_overlay

    tracklets = list(tracklets)
    paths = [None] * len(tracklets) if paths is None else list(paths)
    image_size = resolve_image_size(model, image_size)
    frame_paths = [
        [t.frames[i] for i in evenly_spaced(t.num_frames, int(seq_len))] for t in tracklets
    ]
    clips = np.stack([np.stack([read_frame(p, image_size) for p in fp]) for fp in frame_paths])
    cam = grad_cam(model, clips.astype(np.float32), class_index, feature)
    figures = []
    for b, tracklet in enumerate(tracklets):
        person = ground_truth_person(tracklet, frame_paths[b])
        title = (
            f"pid {tracklet.original_pid}, camera {tracklet.camid + 1}: Grad-CAM of identity "
            f"class {int(cam.class_index[b])} (logit {cam.scores[b]:.2f}) at {cam.feature}"
        )
        fig = plot_mask_overlay(
            clips[b],
            {"Grad-CAM": cam.maps[b]},
            person_masks=person,
            title=title,
            alpha=alpha,
            normalise=False,
        )
        fig.grad_cam = cam
        figures.append(save_figure(fig, paths[b]))
    return figures
