"""GradCAM++ and ScoreCAM from tf-keras-vis (the `vis` extra), on the TensorFlow backend.

tf-keras-vis is the maintained TensorFlow library of class-activation maps; it offers
variants this library does not implement (GradCAM++ weighs the channels by higher-order
gradients, ScoreCAM by the score each channel alone produces, without any gradient). It works
on functional Keras models only (it rebuilds the model up to the named layer) and on the
TensorFlow backend only. For an `ASANet` (a subclassed model) and on JAX / PyTorch use
`keras_asanet.visualization.grad_cam`, which the tests cross-check against tf-keras-vis'
plain Gradcam on the same functional model.
"""

from __future__ import annotations

import warnings

import numpy as np

#: The methods `tf_keras_vis_cam` offers, by name.
METHODS = ("gradcam", "gradcam++", "scorecam")


def _require_tensorflow_and_tf_keras_vis():
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            "tf-keras-vis runs on the TensorFlow backend only (KERAS_BACKEND=tensorflow); the "
            f"running backend is {backend!r}. keras_asanet.visualization.grad_cam works on "
            "every backend."
        )
    try:
        with warnings.catch_warnings():
            # tf-keras-vis 0.8.7 imports scipy.ndimage.interpolation (deprecated by SciPy).
            warnings.simplefilter("ignore", DeprecationWarning)
            import tf_keras_vis.gradcam  # noqa: F401
            import tf_keras_vis.gradcam_plus_plus  # noqa: F401
            import tf_keras_vis.scorecam  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "tf-keras-vis is not installed: `pip install keras-asanet[vis]` (or "
            "`pip install tf-keras-vis==0.8.7`) installs it."
        ) from err


def tf_keras_vis_cam(model, images, class_index, layer, method="gradcam++", max_n=None):
    """A class-activation map of a functional Keras model from tf-keras-vis.

    Args:
        model: a functional `keras.Model` (with `inputs` / `outputs`) returning `(B, K)`
            class scores (logits or probabilities).
        images: `(B, H, W, C)` model input.
        class_index: the class explained for each image: an int or a `(B,)` sequence.
        layer: the name of the layer whose output map is explained (a `(B, h, w, C)`
            channels-last output, e.g. the last convolution).
        method: `"gradcam"`, `"gradcam++"` (default) or `"scorecam"`.
        max_n: ScoreCAM only: `None` (default) scores every channel; an int keeps the
            `max_n` channels of largest variance (tf-keras-vis' Faster-ScoreCAM).

    Returns:
        `(B, h, w)` float64 maps at the layer's resolution, each divided by its largest value
        (an all-zero map stays zero), like `grad_cam(...).maps[:, 0]`.

    Raises:
        RuntimeError: the backend is not TensorFlow.
        ImportError: tf-keras-vis is not installed (the `vis` extra).
        ValueError: an unknown method, or a model that is not functional.

    Example:

    ```python
    # KERAS_BACKEND=tensorflow
    maps = tf_keras_vis_cam(model, images, class_index=[3, 1], layer="last_conv")
    ```
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    _require_tensorflow_and_tf_keras_vis()
    if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise ValueError(
            f"tf-keras-vis needs a functional keras.Model (one with inputs and outputs); "
            f"{type(model).__name__} has none. For an ASANet use "
            "keras_asanet.visualization.grad_cam."
        )
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.scores import CategoricalScore

    images = np.asarray(images, np.float32)
    classes = np.broadcast_to(np.asarray(class_index, np.int64), (images.shape[0],))
    score = CategoricalScore([int(c) for c in classes])
    common = dict(penultimate_layer=layer, expand_cam=False)
    if method == "gradcam":
        cam = Gradcam(model, clone=True)(score, images, normalize_cam=False, **common)
    elif method == "gradcam++":
        cam = GradcamPlusPlus(model, clone=True)(score, images, normalize_cam=False, **common)
    else:
        with warnings.catch_warnings():
            # tf-keras-vis calls the model on a tuple of one input (Keras 3 warns, and runs).
            warnings.filterwarnings("ignore", "The structure of `inputs`", UserWarning)
            cam = Scorecam(model, clone=True)(
                score, images, max_N=max_n, normalize_cam=False, **common
            )
    maps = np.maximum(np.asarray(cam, np.float64).reshape(images.shape[0], *np.shape(cam)[-2:]), 0)
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)
