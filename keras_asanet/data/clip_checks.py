"""Host-side checks of clip batches where data meets the model (numpy, before the call).

ASANet normalises 0..255 RGB inside its graph: clips scaled to [0, 1] give features of a
nearly black image, and a NaN pixel turns every loss and feature into NaN. Neither raises
inside the compiled model, so the library's own pipelines check their batches here, where
it costs one pass over a numpy array and no device synchronisation.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

#: Dtypes a clip batch may have on its way to the model (pixels in [0, 255] either way):
#: `TrainClipDataset` yields them and `extract_features` assembles them.
CLIP_DTYPES = ("float32", "uint8")

# Owners (models, pipelines) already warned about the pixel range: once per instance.
_warned = weakref.WeakSet()
_warned_ids = set()  # owners that cannot be weakly referenced


def check_clip_batch(clips, owner=None, where="the clips"):
    """Refuses non-finite clips and warns (once per `owner`) when they look like [0, 1].

    Args:
        clips: a numpy clip batch `(B, T, H, W, 3)`.
        owner: the model or pipeline the batch is for; the range warning is given once for
            each (every batch is checked for NaN / inf).
        where: what the batch is, for the messages.

    Raises:
        ValueError: the batch contains NaN or inf values.
    """
    clips = np.asarray(clips)
    if clips.size == 0 or not np.issubdtype(clips.dtype, np.floating):
        return
    # A float64 sum is NaN / inf exactly when a pixel is (pixels are bounded far below
    # overflow), and costs no array-sized temporary. (inf + -inf is NaN, which is the point:
    # numpy's "invalid value" warning for it is not wanted.)
    with np.errstate(invalid="ignore"):
        total = np.sum(clips, dtype=np.float64)
    if not np.isfinite(total):
        bad = int(np.count_nonzero(~np.isfinite(clips)))
        raise ValueError(
            f"{where}: the clip batch of shape {clips.shape} contains {bad} NaN or inf "
            "values; the model's features and losses would all be NaN. Check the frames "
            "and the augmentation that produced them."
        )
    if _already_warned(owner):
        return
    high = float(clips.max())
    if high <= 1.0:
        _mark_warned(owner)
        warnings.warn(
            f"{where}: the largest pixel value of the clip batch is {high:g}, but ASANet "
            "expects RGB pixels in [0, 255] (it normalises inside the model); clips "
            "scaled to [0, 1] give wrong features. Multiply by 255 (or check for black "
            "frames).",
            UserWarning,
            stacklevel=3,
        )


def _already_warned(owner):
    if owner is None:
        return False
    try:
        return owner in _warned
    except TypeError:
        return id(owner) in _warned_ids


def _mark_warned(owner):
    if owner is None:
        return
    try:
        _warned.add(owner)
    except TypeError:
        _warned_ids.add(id(owner))
