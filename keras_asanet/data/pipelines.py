"""`keras.utils.PyDataset` pipelines that turn tracklets into clip batches for `model.fit`.

Batches are numpy arrays (no backend tensors), so the same pipeline feeds the JAX, PyTorch
and TensorFlow trainers and can run in worker threads or processes.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_asanet.data.clip_augmentation import ClipAugmentation
from keras_asanet.data.clip_checks import CLIP_DTYPES, check_clip_batch
from keras_asanet.data.frame_sampling import evenly_spaced, restricted_random
from keras_asanet.data.image_io import FrameError, read_clip
from keras_asanet.data.samplers import PKSampler

#: Keys of the targets dict every pipeline yields.
TARGET_KEYS = ("pid", "camid", "re_attr", "ir_attr", "attr_mask")


def _check_common(tracklets, seq_len, image_size):
    if not tracklets:
        raise ValueError("The pipeline needs at least one tracklet.")
    if int(seq_len) < 1:
        raise ValueError(f"seq_len (T) must be >= 1, got {seq_len}.")
    if len(image_size) != 2 or min(int(v) for v in image_size) < 1:
        raise ValueError(f"image_size must be (height, width) of positive ints, got {image_size}.")


def check_identity_labels(pids, num_classes=None):
    """Refuses identity labels a classifier of `num_classes` outputs cannot take.

    Checked once where the data meets the model: inside a compiled train step an
    out-of-range label is not an error (JAX's one-hot gives a zero row, `take` clips), so
    the loss would be silently wrong.

    Args:
        pids: the training tracklets' identity labels.
        num_classes: the classifier width (labels must lie in `[0, num_classes)`), or `None`
            to check only that no label is negative.
    """
    pids = np.asarray(pids)
    if pids.size == 0:
        return
    low, high = int(pids.min()), int(pids.max())
    if low < 0:
        raise ValueError(
            f"Training identity labels must be >= 0, found {low}: relabel the training "
            "identities to 0..N-1 (the dataset readers do) and leave junk / distractor "
            "tracklets (pid -1) out of the training split."
        )
    if num_classes is not None and high >= int(num_classes):
        raise ValueError(
            f"The largest training identity label is {high} but num_identities is "
            f"{int(num_classes)}: labels must lie in [0, {int(num_classes)}); relabel the "
            "training identities to 0..N-1 or build the model with more identities."
        )


def make_targets(tracklets, schema):
    """The targets dict of a list of tracklets: pids, cameras, attribute vectors and mask.

    Args:
        tracklets: the batch's `Tracklet`s.
        schema: the dataset's `AttributeSchema`, or `None` (attribute entries then are
            zero-width arrays and the mask is all zero).

    Returns:
        A dict with `pid` (B,) int32, `camid` (B,) int32, `re_attr` (B, D_re) float32,
        `ir_attr` (B, D_ir) float32 and `attr_mask` (B,) float32.
    """
    n = len(tracklets)
    if schema is None:
        re = np.zeros((n, 0), np.float32)
        ir = np.zeros((n, 0), np.float32)
        mask = np.zeros((n,), np.float32)
    else:
        encoded = [schema.encode(t.attributes) for t in tracklets]
        re = np.stack([e[0] for e in encoded])
        ir = np.stack([e[1] for e in encoded])
        mask = np.asarray([e[2] for e in encoded], np.float32)
    return {
        "pid": np.asarray([t.pid for t in tracklets], np.int32),
        "camid": np.asarray([t.camid for t in tracklets], np.int32),
        "re_attr": re,
        "ir_attr": ir,
        "attr_mask": mask,
    }


class TrainClipDataset(keras.utils.PyDataset):
    """PK-sampled, restricted-random, augmented training clips.

    Each batch holds P identities x K tracklets; each tracklet gives T frames by restricted
    random sampling; each clip gets one flip / crop / erasing transform shared by its frames.
    Every random choice of batch `i` of epoch `e` comes from a generator seeded by
    `(seed, e, i)`, so batches are the same whatever the worker count, thread or process, and
    a resumed run replays them (`get_state` / `set_state`).

    Args:
        tracklets: the training `Tracklet`s (pids relabelled `0..N-1`).
        attribute_schema: the dataset's `AttributeSchema` or `None`.
        num_identities: P.
        num_instances: K.
        seq_len: T.
        image_size: `(height, width)` frames are resized to.
        augmentation: a `ClipAugmentation`, `None` for the paper's recipe scaled to
            `image_size` (`ClipAugmentation.for_image_size`), or `False` for none.
        seed: seed of sampling and augmentation.
        workers: threads that decode the clips of a batch (JPEG decoding and resizing release
            the GIL). Keras itself is always given one worker: its multi-worker enqueuer lets
            `fit`'s first look at the data take batch 0 from the stream, so on JAX and PyTorch
            every later batch came one place late and a run trained on other batches than
            with one worker (measured in Keras 3.15). Parallel decoding inside a batch keeps
            every batch where it belongs.
        use_multiprocessing, max_queue_size: as `keras.utils.PyDataset` (with one Keras
            worker they have no effect).
        num_classes: the model's identity classifier width; when given, every pid must lie
            in `[0, num_classes)` (`check_identity_labels`; negative pids are always refused).
        clip_dtype: `"float32"` (default) or `"uint8"`: the dtype of the yielded clips, pixels
            in [0, 255] either way. `ASANet` casts and normalises inside its graph, so uint8
            clips train the same model; they are 4x smaller, which is most of the loader's
            cost beyond decoding (`scripts/benchmark.py data`). Augmented uint8 pixels are
            rounded (see `ClipAugmentation.apply_into`).
        prefetch: 1 to build batch `i + 1` in one background thread while `fit` trains on
            batch `i` (decoding and augmenting then overlap the step instead of adding to
            it); 0 (default here; training runs use `RunConfig.prefetch`, 1) builds each batch
            when asked. Either way a batch is a function of `(seed, epoch, i)` only, so the
            batches are the same.

    Example:

    ```python
    data = TrainClipDataset(mars.train, mars.attribute_schema, num_identities=8,
                            num_instances=4, seq_len=6, image_size=(256, 128), workers=4)
    clips, targets = data[0]      # (32, 6, 256, 128, 3) float32 in [0, 255]
    model.fit(data, epochs=..., shuffle=False)
    ```

    Pass `shuffle=False` to `fit`: the batches are already a seeded random PK plan, and
    Keras' `shuffle=True` reorders them with Python's global RNG, which a resumed run cannot
    replay.

    Every batch is checked for NaN / inf pixels (a `ValueError`), and the first for a [0, 1]
    pixel range (a warning), by `keras_asanet.data.clip_checks.check_clip_batch`. A frame
    that cannot be decoded raises a `FrameError` naming the file and is kept in
    `frame_error` (TensorFlow's `fit` reports a pipeline error as its own exception type).
    """

    def __init__(
        self,
        tracklets,
        attribute_schema=None,
        num_identities=8,
        num_instances=4,
        seq_len=6,
        image_size=(256, 128),
        augmentation=None,
        seed=0,
        workers=1,
        use_multiprocessing=False,
        max_queue_size=10,
        num_classes=None,
        clip_dtype="float32",
        prefetch=0,
    ):
        super().__init__(
            workers=1, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}.")
        #: Threads decoding the clips of one batch (see `workers`).
        self.decode_workers = workers
        self._pool = None
        if isinstance(prefetch, bool) or prefetch not in (0, 1):
            raise ValueError(f"prefetch must be 0 or 1, got {prefetch!r}.")
        #: Whether the next batch is built in a background thread while the model trains on
        #: this one (see `prefetch`).
        self.prefetch = int(prefetch)
        self._prefetcher = None
        self._ahead = None  # ((epoch, index), Future) of the batch being built ahead
        _check_common(tracklets, seq_len, image_size)
        if clip_dtype not in CLIP_DTYPES:
            raise ValueError(f"clip_dtype must be one of {CLIP_DTYPES}, got {clip_dtype!r}.")
        self.clip_dtype = clip_dtype
        self.tracklets = list(tracklets)
        check_identity_labels([t.pid for t in self.tracklets], num_classes)
        self.attribute_schema = attribute_schema
        self.seq_len = int(seq_len)
        self.image_size = tuple(int(v) for v in image_size)
        if augmentation is None:
            augmentation = ClipAugmentation.for_image_size(*self.image_size)
        self.augmentation = augmentation
        # Targets are a function of the tracklet only: encode (and validate) them once.
        self._targets = make_targets(self.tracklets, attribute_schema)
        self.sampler = PKSampler(
            [t.pid for t in self.tracklets], num_identities, num_instances, seed=seed
        )
        self._batches = self.sampler.epoch_batches()
        self.frame_error = None

    @property
    def num_batches(self):
        return len(self._batches)

    def __len__(self):
        return len(self._batches)

    def on_epoch_end(self):
        self.sampler.epoch += 1
        self._batches = self.sampler.epoch_batches()

    def get_state(self):
        return self.sampler.get_state()

    def set_state(self, state):
        self.sampler.set_state(state)
        self._batches = self.sampler.epoch_batches()

    def __getitem__(self, index):
        if not 0 <= index < len(self._batches):
            raise IndexError(f"batch {index} out of range (0..{len(self._batches) - 1}).")
        key = (self.sampler.epoch, int(index))
        ahead, self._ahead = self._ahead, None
        try:
            if ahead is not None and ahead[0] == key:
                batch = ahead[1].result()  # re-raises the build's error (e.g. a FrameError)
            else:
                if ahead is not None:
                    ahead[1].cancel()  # built for another position: not used
                batch = self._build(*key, self._batches)
        except FrameError as err:
            # Recorded here, where the batch it belongs to is asked for, not in the build
            # (which may run ahead in another thread): a batch built ahead that fails must
            # not mark the batch being trained on.
            self.frame_error = err
            raise
        if self.prefetch and index + 1 < len(self._batches):
            if self._prefetcher is None:
                from concurrent.futures import ThreadPoolExecutor

                self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="clip-prefetch")
            following = (self.sampler.epoch, int(index) + 1)
            future = self._prefetcher.submit(self._build, *following, self._batches)
            self._ahead = (following, future)
        return batch

    def _build(self, epoch, index, batches):
        """Batch `index` of `epoch` (a pure function of the seed, the epoch and the index,
        so building it ahead in another thread gives the same batch)."""
        rng = np.random.default_rng([self.sampler.seed, epoch, int(index)])
        indices = np.asarray(batches[index])
        chosen = [self.tracklets[i] for i in indices]
        clips = np.empty((len(chosen), self.seq_len, *self.image_size, 3), self.clip_dtype)
        # Every random draw first, in one fixed order (frames, then transform, per clip), so
        # the batch is the same however many threads then decode it.
        plans = []
        for t in chosen:
            idx = restricted_random(t.num_frames, self.seq_len, rng)
            transform = self.augmentation.draw(*self.image_size, rng) if self.augmentation else None
            plans.append(([t.frames[i] for i in idx], transform))

        def load(b):
            paths, transform = plans[b]
            if transform is not None:
                frames = read_clip(paths, self.image_size, np.uint8, flip=transform.flip)
                self.augmentation.apply_into(frames, clips[b], transform, flipped=True)
            else:
                clips[b] = read_clip(paths, self.image_size, np.uint8)

        if self.decode_workers > 1:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.decode_workers)
            list(self._pool.map(load, range(len(plans))))  # re-raises the first error
        else:
            for b in range(len(plans)):
                load(b)
        check_clip_batch(clips, owner=self, where=f"TrainClipDataset batch {index}")
        return clips, {k: v[indices] for k, v in self._targets.items()}


class EvalClipDataset(keras.utils.PyDataset):
    """Deterministic clips of T evenly spaced frames per tracklet, in the tracklets' order.

    For `model.predict` / `model.evaluate` on query or gallery tracklets; dense all-frame
    features come from `keras_asanet.evaluation.extract_features`.

    Args:
        tracklets: the `Tracklet`s.
        attribute_schema: `AttributeSchema` or `None`.
        seq_len: T.
        image_size: `(height, width)`.
        batch_size: clips per batch (the last batch may be smaller).
        workers, use_multiprocessing, max_queue_size: as `keras.utils.PyDataset`.
    """

    def __init__(
        self,
        tracklets,
        attribute_schema=None,
        seq_len=6,
        image_size=(256, 128),
        batch_size=32,
        workers=1,
        use_multiprocessing=False,
        max_queue_size=10,
    ):
        super().__init__(
            workers=1, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        _check_common(tracklets, seq_len, image_size)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.tracklets = list(tracklets)
        self.attribute_schema = attribute_schema
        self.seq_len = int(seq_len)
        self.image_size = tuple(int(v) for v in image_size)
        self.batch_size = int(batch_size)
        self._targets = make_targets(self.tracklets, attribute_schema)

    @property
    def num_batches(self):
        return len(self)

    def __len__(self):
        return -(-len(self.tracklets) // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (0..{len(self) - 1}).")
        span = slice(index * self.batch_size, (index + 1) * self.batch_size)
        chosen = self.tracklets[span]
        clips = np.stack(
            [
                read_clip(
                    [t.frames[i] for i in evenly_spaced(t.num_frames, self.seq_len)],
                    self.image_size,
                )
                for t in chosen
            ]
        )
        check_clip_batch(clips, owner=self, where=f"EvalClipDataset batch {index}")
        return clips, {k: v[span] for k, v in self._targets.items()}
