"""The raw-pixels baseline: what re-ID scores without learning anything.

Each tracklet is described by the mean of its resized RGB frames, flattened and L2-normalised,
and ranked with exactly the protocol and ranking code used for a model. A model that does not
beat this baseline on unseen identities in unseen scenes has learned nothing useful beyond the
colour layout of the boxes (DESIGN.md §5, "Generalisation is measured, never assumed").

numpy-only: no Keras, no model.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np

from keras_asanet.data.image_io import read_frame
from keras_asanet.evaluation.feature_extraction import MODES, clip_plan
from keras_asanet.evaluation.protocols import EvaluationProtocol, get_protocol
from keras_asanet.evaluation.ranking import DEFAULT_MAX_MEMORY

#: Default frame size of the descriptor: 16 x 8 x 3 = 384 numbers per tracklet. Coarse on
#: purpose: it keeps the colour layout (top, bottom, background) and drops the box jitter.
DEFAULT_BASELINE_IMAGE_SIZE = (16, 8)


def raw_pixel_features(
    tracklets,
    image_size=DEFAULT_BASELINE_IMAGE_SIZE,
    mode="dense",
    seq_len=6,
    normalize=True,
    num_workers=4,
    verbose=False,
) -> np.ndarray:
    """The raw-pixels descriptor of each tracklet: its mean resized frame, flattened.

    The frames averaged are exactly those the model evaluation uses (`clip_plan(tracklets,
    mode, seq_len)`): with `"dense"` every frame, the last one repeated as often as it is in
    the padded last clip; with `"sampled"` the `seq_len` evenly spaced frames. Averaging the
    frames of all clips equals averaging the clip means, as the model's features are averaged.

    Args:
        tracklets: a sequence of `Tracklet`.
        image_size: `(height, width)` each frame is resized to (the same bilinear resizing as
            the model's input, `keras_asanet.data.image_io.read_frame`).
        mode, seq_len: which frames (see `keras_asanet.evaluation.extract_features`).
        normalize: divide each descriptor by its L2 norm (default), so Euclidean ranking
            equals cosine ranking and a global brightness change of a tracklet matters less.
        num_workers: frame-decoding threads.
        verbose: show a tqdm progress bar.

    Returns:
        `(len(tracklets), height * width * 3)` float32, pixel values in [0, 1] before the
        normalisation.
    """
    tracklets = list(tracklets)
    if not tracklets:
        raise ValueError("tracklets is empty; nothing to describe.")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}.")
    if len(image_size) != 2 or min(int(s) for s in image_size) < 1:
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size}.")
    image_size = (int(image_size[0]), int(image_size[1]))
    # How often each frame of each tracklet is used by the plan (dense repeats the last one).
    uses = [np.zeros(t.num_frames, np.int64) for t in tracklets]
    for i, indices in clip_plan(tracklets, mode, int(seq_len)):
        np.add.at(uses[i], indices, 1)
    sums = RawPixelSums(len(tracklets), image_size)
    from keras_asanet.evaluation.progress import progress_bar

    def describe(i):
        total = np.zeros(image_size + (3,), np.float64)
        used = np.flatnonzero(uses[i])
        for j in used:
            total += uses[i][j] * read_frame(tracklets[i].frames[j], image_size)
        return i, total, uses[i].sum()

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(num_workers))) as pool:
        done = pool.map(describe, range(len(tracklets)))
        for i, total, count in progress_bar(
            done, total=len(tracklets), unit="tracklet", desc="raw pixels", disable=not verbose
        ):
            sums.totals[i], sums.counts[i] = total, count
    return sums.features(normalize=normalize)


class RawPixelSums:
    """Running per-tracklet sums of frames at the baseline's size, to describe them later.

    Why it exists: a model's evaluation decodes every test frame anyway; with one of these
    passed to `extract_features(..., raw_pixels=...)` each decoded frame is also resized to
    the baseline's size and added here, so the raw-pixels baseline needs no second pass over
    the files (at 64x32 decoding costs more than resizing). The sums are of whole pixel
    values in float64, hence exact in any order: `features()` equals `raw_pixel_features`
    of the same frames to the bit (tested).

    Args:
        num_tracklets: how many tracklets are described.
        image_size: `(height, width)` of the baseline's frames (default 16 x 8).

    Example:

    >>> sums = RawPixelSums(2, (16, 8))
    >>> sums.add(0, np.zeros((16, 8, 3), np.uint8))
    >>> sums.add(1, np.full((16, 8, 3), 255, np.uint8))
    >>> sums.features(normalize=False).max(axis=1).tolist()
    [0.0, 1.0]
    """

    def __init__(self, num_tracklets, image_size=DEFAULT_BASELINE_IMAGE_SIZE):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.totals = np.zeros((int(num_tracklets), *self.image_size, 3), np.float64)
        self.counts = np.zeros(int(num_tracklets), np.int64)

    def add(self, index, frame):
        """Adds one use of a `(height, width, 3)` uint8 frame to tracklet `index`."""
        if tuple(frame.shape) != (*self.image_size, 3):
            raise ValueError(
                f"RawPixelSums of size {self.image_size} got a frame of shape {frame.shape}."
            )
        self.totals[index] += frame
        self.counts[index] += 1

    def features(self, normalize=True):
        """The descriptors `(num_tracklets, height * width * 3)` float32, as
        `raw_pixel_features` returns them (mean frame in [0, 1], then L2-normalised)."""
        if not self.counts.all():
            missing = np.flatnonzero(self.counts == 0)[:5].tolist()
            raise ValueError(f"No frame was added for tracklets {missing} (first five).")
        means = self.totals / (255.0 * self.counts[:, None, None, None])
        features = means.reshape(len(self.counts), -1).astype(np.float32)
        if normalize:
            norms = np.linalg.norm(features, axis=1, keepdims=True)
            features = features / np.maximum(norms, 1e-12)
        return features.astype(np.float32)


def raw_pixel_baseline(
    dataset=None,
    protocol="usual",
    trained_on=None,
    image_size=DEFAULT_BASELINE_IMAGE_SIZE,
    mode="dense",
    seq_len=6,
    metric="euclidean",
    normalize=True,
    max_rank=50,
    max_memory=DEFAULT_MAX_MEMORY,
    num_workers=4,
    verbose=False,
    rerank=False,
):
    """Ranks a dataset's test split by raw pixels, with the model evaluation's protocol.

    Why it exists: it answers "what did learning add?". Every tracklet is described by the mean
    of its resized RGB frames (`raw_pixel_features`: flattened, L2-normalised) and ranked by
    `keras_asanet.evaluation.get_protocol(...).evaluate`, the same code that scores a model, so
    the two results are directly comparable. On the synthetic dataset, whose identities share
    colours on purpose, raw pixels score well above chance but far below a model that learned
    identities; a model that does not beat them learned nothing useful.

    Args:
        dataset: an object with `.name`, `.query`, `.gallery` (e.g. `keras_asanet.data.Mars`);
            may be `None` when `protocol` is an `EvaluationProtocol`.
        protocol: a setup name, `"usual"` or `"mixing"`, or an `EvaluationProtocol` (e.g.
            the one a model was evaluated with).
        trained_on: for a setup name, the training dataset of a cross-dataset evaluation
            (it only names the result; raw pixels are not trained).
        image_size: `(height, width)` frames are resized to; default `(16, 8)` (384-number
            descriptors: cheap for MARS' 11,310 test tracklets). A finer size keeps more
            detail but also more of the box jitter and background.
        mode, seq_len: which frames are averaged: the same as the model evaluation's
            (`"dense"`: all frames; `"sampled"`: `seq_len` evenly spaced ones).
        metric: `"euclidean"` or `"cosine"` (equal rankings when `normalize` is on).
        normalize: L2-normalise the descriptors (default).
        max_rank, max_memory: see `keras_asanet.evaluation.evaluate_ranking`.
        num_workers: frame-decoding threads.
        verbose: progress bar.
        rerank: k-reciprocal re-ranking, as for the model it stands beside
            (`EvaluationProtocol.evaluate`).

    Returns:
        A `RankingResult` named like the model's (e.g. `"mars/usual"`).

    Example:

    >>> from keras_asanet.data import Mars                          # doctest: +SKIP
    >>> baseline = raw_pixel_baseline(Mars(root), protocol="usual")  # doctest: +SKIP
    >>> print(f"mAP {100 * baseline.mAP:.1f}")                        # doctest: +SKIP
    """
    if not isinstance(protocol, EvaluationProtocol):
        if dataset is None:
            raise ValueError(
                f"raw_pixel_baseline needs a dataset when protocol is a setup name "
                f"({protocol!r}); pass dataset=..., or an EvaluationProtocol as protocol."
            )
        protocol = get_protocol(dataset, protocol, trained_on=trained_on)
    features = raw_pixel_features(
        protocol.tracklets,
        image_size=image_size,
        mode=mode,
        seq_len=seq_len,
        normalize=normalize,
        num_workers=num_workers,
        verbose=verbose,
    )
    return protocol.evaluate(
        features, metric=metric, max_rank=max_rank, max_memory=max_memory, rerank=rerank
    )
