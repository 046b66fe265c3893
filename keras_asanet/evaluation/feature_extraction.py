"""Tracklet features for evaluation, streamed from disk in bounded memory.

Two test-time frame choices (codebases name these differently; ours are):

* `"dense"` (the paper's test-time default): every frame of the tracklet, cut into consecutive
  clips of `seq_len` frames (the last clip completed by repeating the last frame, see
  `keras_asanet.data.frame_sampling.dense_chunks`); the clip features are averaged.
  (torchreid's `evenly` is 15 spaced frames; AGW's `evenly` is strided 6-frame clips capped at
  50; Video-Person-ReID's `dense` is this one.)
* `"sampled"`: one clip of `seq_len` evenly spaced frames (the middle frame of `seq_len` equal
  chunks, `evenly_spaced`).

With `flip=True` every clip is also run mirrored left-right and the two features averaged
(the flip test of fast-reid and of AGW's code; the paper does not say whether it used one, so
it is off unless asked for). Training flips clips at random, so both orientations are views
the model knows of one person, and their mean is a steadier feature (docs/results.md measures
it).

Clips of different tracklets share batches, so a 900-frame tracklet never needs 150 clips in
memory at once: at most two batches of decoded frames exist at any time (one being decoded by
worker threads while the model runs on the other). Keras is imported lazily, inside the call.
"""

from __future__ import annotations

import concurrent.futures
from typing import NamedTuple

import numpy as np

from keras_asanet.data.clip_checks import CLIP_DTYPES, check_clip_batch
from keras_asanet.data.frame_sampling import dense_chunks, evenly_spaced
from keras_asanet.data.image_io import read_frame_at_sizes

MODES = ("dense", "sampled")
DEFAULT_IMAGE_SIZE = (256, 128)


class ExtractedFeatures(NamedTuple):
    """What `extract_features` returns (unpacks as `features, pids, camids`).

    Attributes:
        features: `(N, D)` float32 (or, for a model returning a dict of `(B, D_k)` outputs,
            a dict of `(N, D_k)` float32 arrays, each averaged the same way).
        pids: `(N,)` int64 identities of the tracklets.
        camids: `(N,)` int64 cameras of the tracklets.
    """

    features: np.ndarray | dict
    pids: np.ndarray
    camids: np.ndarray


def clip_plan(tracklets, mode="dense", seq_len=6):
    """The clips to run, as `(tracklet_position, frame_indices)` pairs, in tracklet order.

    Args:
        tracklets: a sequence of `Tracklet`.
        mode: `"dense"` or `"sampled"` (see the module docstring).
        seq_len: T, frames per clip.

    Yields:
        `(i, indices)`: `indices` is a `(seq_len,)` int64 array of frame positions in
        `tracklets[i].frames`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    for i, tracklet in enumerate(tracklets):
        if mode == "dense":
            yield from ((i, chunk) for chunk in dense_chunks(tracklet.num_frames, seq_len))
        else:
            yield i, evenly_spaced(tracklet.num_frames, seq_len)


def _num_clips(tracklets, mode, seq_len):
    if mode == "sampled":
        return len(tracklets)
    return sum(-(-t.num_frames // seq_len) for t in tracklets)


def resolve_image_size(model, image_size=None):
    """The frame size `extract_features` uses: `image_size`, else the model's fixed input
    size, else the size a subclassed model was built for (e.g. an `ASANet` trained at 64x32,
    whose input shape is not fixed), else `(256, 128)`.

    Why the build size: a subclassed model has no `input_shape`, and falling back to
    256x128 for a model trained at another size gives other features without any error."""
    if image_size is None:
        image_size = _infer_image_size(model) or built_image_size(model) or DEFAULT_IMAGE_SIZE
    if len(image_size) != 2 or min(int(s) for s in image_size) < 1:
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size}.")
    return (int(image_size[0]), int(image_size[1]))


def _frame_size(shape):
    """`(height, width)` of a `(batch, T, H, W, C)` shape when both are known, else `None`."""
    if isinstance(shape, (list, tuple)) and len(shape) == 5:
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return (h, w)
    return None


def _infer_image_size(model):
    try:
        shape = model.input_shape
    except Exception:  # noqa: BLE001 - best effort: unbuilt / subclassed models may raise
        return None
    return _frame_size(shape)


def built_image_size(model):
    """`(height, width)` of the clips a Keras layer or model was built for (its build
    config, which `.keras` files keep), or `None` when unknown."""
    try:
        shape = (model.get_build_config() or {}).get("input_shape")
    except Exception:  # noqa: BLE001 - best effort: plain callables have no build config
        return None
    return _frame_size(shape)


def _check_seq_len(model, seq_len):
    try:
        shape = model.input_shape
    except Exception:  # noqa: BLE001 - best effort, as above
        return
    if isinstance(shape, (list, tuple)) and len(shape) == 5:
        if isinstance(shape[1], int) and shape[1] != seq_len:
            raise ValueError(
                f"seq_len={seq_len} but the model's input takes clips of {shape[1]} frames "
                f"(input shape {shape}); pass seq_len={shape[1]}."
            )


def _predictor(model, call_kwargs=None):
    import keras

    call_kwargs = dict(call_kwargs or {})
    if isinstance(model, keras.Model):
        # predict_on_batch runs in inference mode without gradient tracking on every backend.
        if call_kwargs:
            return _called_with(model, call_kwargs).predict_on_batch
        return model.predict_on_batch
    if isinstance(model, keras.layers.Layer):
        return lambda x: model(x, training=False, **call_kwargs)
    if callable(model):
        return (lambda x: model(x, **call_kwargs)) if call_kwargs else model
    raise ValueError(
        f"model must be a Keras model/layer or a callable mapping (B, T, H, W, 3) clips to "
        f"(B, D) features, got {type(model).__name__}."
    )


def _called_with(model, call_kwargs):
    """A `keras.Model` over the same variables whose call is
    `model(x, training=False, **call_kwargs)`.

    Why: its `predict_on_batch` is compiled and gradient-free like the model's own, but it
    returns what `call_kwargs` ask for (e.g. an ASANet's output dict with
    `return_dict=True`) without switching the model's output mode or dropping its compiled
    predict function.
    """
    import keras

    class CalledWith(keras.Model):
        def __init__(self, inner):
            super().__init__(name=f"{inner.name}_called_with")
            self.inner = inner

        def call(self, x):
            return self.inner(x, training=False, **call_kwargs)

    return CalledWith(model)


def _to_numpy_outputs(outputs, batch):
    import keras

    def convert(x):
        return np.asarray(keras.ops.convert_to_numpy(x))

    if isinstance(outputs, dict):
        out = {str(k): convert(v) for k, v in outputs.items()}
    else:
        out = convert(outputs)
    for key, value in out.items() if isinstance(out, dict) else [("output", out)]:
        if value.ndim != 2 or value.shape[0] != batch:
            raise ValueError(
                f"The model's {key} has shape {value.shape} for a batch of {batch} clips; "
                f"expected ({batch}, D): extract_features needs a model mapping clips "
                "(B, T, H, W, 3) to features (B, D)."
            )
        if not np.isfinite(value).all():
            raise ValueError(f"The model's {key} contains NaN or inf values.")
    return out


def extract_features(
    model,
    tracklets,
    mode="dense",
    seq_len=6,
    batch_size=32,
    image_size=None,
    num_workers=4,
    pad_batches=True,
    verbose=True,
    call_kwargs=None,
    clip_dtype=None,
    flip=False,
    raw_pixels=None,
) -> ExtractedFeatures:
    """Computes one feature per tracklet with a clip model, streaming frames from disk.

    Why it exists: dense test-time extraction of long tracklets runs out of memory in several
    public codebases; here clips of all tracklets are batched together and their features are
    summed per tracklet as they come, so memory is bounded by `batch_size` clips whatever the
    tracklet lengths. It works the same on the JAX, PyTorch and TensorFlow backends.

    Args:
        model: a Keras model mapping clips `(B, T, H, W, 3)` float32 RGB in [0, 255] to
            features `(B, D)` (run with `predict_on_batch`, i.e. in inference mode), a Keras
            layer (called with `training=False`), or any callable on numpy batches. A model
            returning a dict of `(B, D_k)` outputs gets every output averaged the same way.
        tracklets: sequence of `Tracklet` (e.g. `protocol.tracklets`).
        mode: `"dense"` (all frames in clips of `seq_len`, clip features averaged; default)
            or `"sampled"` (one clip of `seq_len` evenly spaced frames).
        seq_len: T, frames per clip (the model's clip length).
        batch_size: clips per model call.
        image_size: `(height, width)` frames are resized to; by default the model's input
            size if it is fixed, else `(256, 128)`.
        num_workers: threads decoding frames (the next batch is decoded while the model runs).
        pad_batches: pad the last batch to `batch_size` (repeating its last clip) so that
            compiled backends never retrace for a new shape.
        verbose: show a tqdm progress bar.
        call_kwargs: keyword arguments of every model call, e.g. `{"return_dict": True}` for
            an `ASANet`'s output dict (feature and attribute logits). A Keras model is then
            run through a compiled wrapper calling `model(x, training=False, **call_kwargs)`,
            so the model itself is left as it is.
        clip_dtype: `"float32"` or `"uint8"`, the dtype of the clip batches given to the
            model. Default `None`: `"uint8"` for an `ASANet` (it casts and normalises inside
            its graph, so the features are the same; the frames are decoded as uint8 anyway,
            and a uint8 batch is a quarter of the bytes to assemble and hand over), float32
            for any other model.
        flip: also run every clip mirrored left-right (width axis) and average the two
            outputs (each output of a dict): twice the model calls, the same memory bound.
        raw_pixels: a `keras_asanet.evaluation.RawPixelSums` for these tracklets, or `None`.
            Every frame of every clip (not the padding, not the mirror) is then also resized
            to its size and added to it, from the same decoding: the raw-pixels baseline of
            the same frames without reading the files again (`evaluate_model` does this).

    Returns:
        `ExtractedFeatures(features, pids, camids)` in the order of `tracklets`; `features`
        is float32.

    Example:

    >>> feats, pids, camids = extract_features(model, protocol.tracklets)  # doctest: +SKIP

    Reference: ASA-Net §IV (test-time features over all frames, T = 6).
    """
    tracklets = list(tracklets)
    if not tracklets:
        raise ValueError("tracklets is empty; nothing to extract.")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}.")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if int(num_workers) < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}.")
    seq_len, batch_size = int(seq_len), int(batch_size)
    clip_dtype = _resolve_clip_dtype(model, clip_dtype)
    _check_seq_len(model, seq_len)
    image_size = resolve_image_size(model, image_size)
    predict = _predictor(model, call_kwargs)
    if raw_pixels is not None and len(raw_pixels.counts) != len(tracklets):
        raise ValueError(
            f"raw_pixels describes {len(raw_pixels.counts)} tracklets; there are {len(tracklets)}."
        )
    sizes = [image_size] if raw_pixels is None else [image_size, raw_pixels.image_size]

    from keras_asanet.evaluation.progress import progress_bar

    total = _num_clips(tracklets, mode, seq_len)
    sums, counts = None, np.zeros(len(tracklets), np.int64)
    plan = clip_plan(tracklets, mode, seq_len)
    progress = progress_bar(
        total=total, unit="clip", desc=f"features ({mode})", disable=not verbose
    )
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=int(num_workers))
    try:
        pending = _submit(pool, tracklets, _take(plan, batch_size), sizes)
        while pending is not None:
            owners, futures, layout = pending
            pending_next = _take(plan, batch_size)
            clips = _assemble(
                futures, layout, len(owners), batch_size, pad_batches, seq_len, image_size,
                clip_dtype,
            )  # fmt: skip
            # NaN / inf refused, a [0, 1] pixel range warned about once per model.
            check_clip_batch(clips[: len(owners)], owner=model, where="extract_features")
            # Start decoding the next batch before running the model on this one.
            pending = _submit(pool, tracklets, pending_next, sizes)
            if raw_pixels is not None:
                for owner, paths in zip(owners, layout):
                    for path in paths:
                        raw_pixels.add(owner, futures[path].result()[1])
            outputs = _to_numpy_outputs(predict(clips), len(clips))
            if flip:
                mirrored = np.ascontiguousarray(clips[:, :, :, ::-1])
                outputs = _average(outputs, _to_numpy_outputs(predict(mirrored), len(clips)))
            sums = _accumulate(sums, outputs, owners, len(tracklets))
            np.add.at(counts, owners, 1)
            progress.update(len(owners))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()

    def mean(total_sum):
        return (total_sum / counts[:, None]).astype(np.float32)

    features = {k: mean(v) for k, v in sums.items()} if isinstance(sums, dict) else mean(sums)
    pids = np.array([t.pid for t in tracklets], np.int64)
    camids = np.array([t.camid for t in tracklets], np.int64)
    return ExtractedFeatures(features, pids, camids)


def _average(outputs, mirrored):
    """The mean of a batch's outputs and those of its mirrored clips (float64, as summed)."""
    if isinstance(outputs, dict):
        return {k: (v.astype(np.float64) + mirrored[k]) / 2 for k, v in outputs.items()}
    return (outputs.astype(np.float64) + mirrored) / 2


def _take(plan, n):
    batch = []
    for item in plan:
        batch.append(item)
        if len(batch) == n:
            break
    return batch


def _submit(pool, tracklets, batch, sizes):
    """Queues the decoding of the batch's frames (each distinct file once, at each size)."""
    if not batch:
        return None
    futures, layout = {}, []
    for i, indices in batch:
        frames = tracklets[i].frames
        paths = [frames[j] for j in indices]
        for path in paths:
            if path not in futures:
                futures[path] = pool.submit(read_frame_at_sizes, path, sizes)
        layout.append(paths)
    owners = np.array([i for i, _ in batch], np.int64)
    return owners, futures, layout


def _resolve_clip_dtype(model, clip_dtype):
    if clip_dtype is None:
        from keras_asanet.models.asanet import ASANet

        return "uint8" if isinstance(model, ASANet) else "float32"
    if clip_dtype not in CLIP_DTYPES:
        raise ValueError(f"clip_dtype must be one of {CLIP_DTYPES}, got {clip_dtype!r}.")
    return clip_dtype


def _assemble(futures, layout, n, batch_size, pad, seq_len, image_size, dtype="float32"):
    rows = batch_size if pad else n
    clips = np.empty((rows, seq_len, image_size[0], image_size[1], 3), dtype)
    for b, paths in enumerate(layout):
        for t, path in enumerate(paths):
            clips[b, t] = futures[path].result()[0]
    if rows > n:
        clips[n:] = clips[n - 1]
    return clips


def _accumulate(sums, outputs, owners, num_tracklets):
    n = len(owners)
    if isinstance(outputs, dict):
        if sums is None:
            sums = {k: np.zeros((num_tracklets, v.shape[1])) for k, v in outputs.items()}
        for k, v in outputs.items():
            np.add.at(sums[k], owners, v[:n].astype(np.float64))
        return sums
    if sums is None:
        sums = np.zeros((num_tracklets, outputs.shape[1]))
    np.add.at(sums, owners, outputs[:n].astype(np.float64))
    return sums
