import os

import numpy as np

from keras_asanet.data.mars import Mars
from keras_asanet.data.pipelines import EvalClipDataset, TrainClipDataset
from keras_asanet.data.synthetic import make_synthetic_mars
from keras_asanet.tests.fixtures import write_mars_fixture
from keras_asanet.tests.test_case import TestCase


class PipelinesTest(TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile

        cls._tmp = tempfile.TemporaryDirectory()
        root = os.path.join(cls._tmp.name, "synthetic")
        make_synthetic_mars(root, num_identities=12, seed=1, frames_per_tracklet=(3, 6))
        cls.mars = Mars(root)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def make(self, **kwargs):
        args = dict(num_identities=3, num_instances=2, seq_len=4, image_size=(32, 16), seed=0)
        args.update(kwargs)
        return TrainClipDataset(self.mars.train, self.mars.attribute_schema, **args)

    def test_batch_shapes_dtypes_and_targets(self):
        data = self.make()
        clips, targets = data[0]
        self.assertEqual(clips.shape, (6, 4, 32, 16, 3))
        self.assertEqual(clips.dtype, np.float32)
        self.assertTrue(0.0 <= clips.min() and clips.max() <= 255.0)
        self.assertEqual(targets["pid"].dtype, np.int32)
        self.assertEqual(targets["re_attr"].shape, (6, 32))
        self.assertEqual(targets["ir_attr"].shape, (6, 11))
        self.assertEqual(targets["attr_mask"].shape, (6,))
        pids = targets["pid"].reshape(3, 2)
        self.assertTrue(np.all(pids == pids[:, :1]))
        for b, t in enumerate(np.asarray(data._batches[0])):
            tracklet = self.mars.train[t]
            self.assertEqual(targets["pid"][b], tracklet.pid)
            if tracklet.attributes is not None:
                self.assertEqual(targets["ir_attr"][b, tracklet.motion], 1.0)
            else:
                self.assertEqual(targets["attr_mask"][b], 0.0)

    def test_same_batch_for_same_seed_and_epoch(self):
        a, b = self.make(), self.make()
        self.assertAllEqual(a[1][0], b[1][0])
        other = self.make(seed=1)
        self.assertFalse(np.array_equal(a[1][0], other[1][0]))

    def test_epochs_differ_and_state_resumes(self):
        a = self.make()
        first = a[0][0]
        a.on_epoch_end()
        second = a[0][0]
        self.assertFalse(np.array_equal(first, second))
        b = self.make()
        b.set_state(a.get_state())
        self.assertAllEqual(b[0][0], second)

    def test_without_augmentation_frames_are_the_files(self):
        """Every frame of every clip is, unchanged, a file of its tracklet taken from its own
        chunk of `seq_len` equal chunks (restricted random sampling: so in temporal order)."""
        from keras_asanet.data.image_io import read_frame

        data = self.make(augmentation=False)
        for batch in range(2):
            clips, targets = data[batch]
            for b, index in enumerate(np.asarray(data._batches[batch])):
                tracklet = self.mars.train[index]
                self.assertEqual(targets["pid"][b], tracklet.pid)
                files = [read_frame(p, (32, 16)).astype(np.float32) for p in tracklet.frames]
                n, seq_len = tracklet.num_frames, clips.shape[1]
                for t in range(seq_len):
                    lo = int(np.floor(t * n / seq_len))
                    hi = max(int(np.floor((t + 1) * n / seq_len)), lo + 1)
                    chunk = [j for j in range(lo, hi) if np.array_equal(clips[b, t], files[j])]
                    self.assertNotEmpty(chunk, f"clip {b} frame {t}: not a file of chunk {lo}-{hi}")

    def test_uint8_clips_are_the_float32_clips_rounded(self):
        from keras_asanet.data.clip_augmentation import ClipAugmentation

        for augmentation in (None, ClipAugmentation(erasing_probability=1.0, color_jitter=0.4)):
            floats = self.make(augmentation=augmentation)[0][0]
            ints = self.make(augmentation=augmentation, clip_dtype="uint8")[0][0]
            self.assertEqual(ints.dtype, np.uint8)
            self.assertEqual(ints.shape, floats.shape)
            # Same draws, same pixels up to rounding (gain and erasing fill included).
            self.assertAllEqual(ints, np.clip(np.rint(floats), 0, 255).astype(np.uint8))
        with self.assertRaisesRegex(ValueError, "clip_dtype"):
            self.make(clip_dtype="float16")

    def test_eval_dataset_is_ordered_and_complete(self):
        data = EvalClipDataset(
            self.mars.query,
            self.mars.attribute_schema,
            seq_len=3,
            image_size=(32, 16),
            batch_size=4,
        )
        pids = np.concatenate([data[i][1]["pid"] for i in range(len(data))])
        self.assertAllEqual(pids, [t.pid for t in self.mars.query])
        self.assertEqual(data[0][0].shape, (4, 3, 32, 16, 3))

    def test_works_inside_model_fit(self):
        import keras

        inputs = keras.Input((4, 32, 16, 3))
        x = keras.layers.GlobalAveragePooling3D()(inputs)
        outputs = keras.layers.Dense(self.mars.num_train_pids)(x)
        model = keras.Model(inputs, outputs)

        class PidOnly(keras.utils.PyDataset):
            def __init__(self, inner):
                super().__init__(workers=2)  # Keras' threaded enqueuer
                self.inner = inner

            def __len__(self):
                return len(self.inner)

            def __getitem__(self, i):
                clips, targets = self.inner[i]
                return clips / 255.0, targets["pid"]

        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(PidOnly(self.make()), epochs=2, verbose=0, shuffle=False)
        self.assertTrue(np.isfinite(history.history["loss"][0]))

    def test_decoding_threads_train_the_same_weights_as_one(self):
        """`workers` decode inside a batch; Keras always gets one worker. Handing Keras two
        (its enqueuer) made fit's first look at the data take batch 0, so on JAX and torch
        every batch came one place late and the weights differed."""
        import keras

        class PidClips(TrainClipDataset):
            def __getitem__(self, i):
                clips, targets = super().__getitem__(i)
                return clips / 255.0, targets["pid"]

        weights = {}
        for workers in (1, 2):
            data = PidClips(
                self.mars.train, None, num_identities=3, num_instances=2, seq_len=2,
                image_size=(32, 16), seed=0, workers=workers,
            )  # fmt: skip
            self.assertEqual((data.workers, data.decode_workers), (1, workers))
            keras.utils.set_random_seed(0)
            inputs = keras.Input((2, 32, 16, 3))
            x = keras.layers.GlobalAveragePooling3D()(inputs)
            model = keras.Model(inputs, keras.layers.Dense(self.mars.num_train_pids)(x))
            model.compile(
                keras.optimizers.SGD(0.5),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            model.fit(data, epochs=2, verbose=0, shuffle=False)
            weights[workers] = [self.to_numpy(w) for w in model.weights]
        for a, b in zip(weights[1], weights[2]):
            self.assertAllClose(a, b, atol=1e-6)
        with self.assertRaisesRegex(ValueError, "workers"):
            self.make(workers=0)

    def test_prefetched_batches_are_the_batches_built_when_asked(self):
        plain, ahead = self.make(num_identities=2), self.make(num_identities=2, prefetch=1)
        self.assertEqual(ahead.prefetch, 1)
        n = len(plain)
        self.assertGreater(n, 2)
        for epoch in range(2):
            for i in range(n):
                # Batch i + 1 is being built while batch i is in use.
                a, b = plain[i], ahead[i]
                self.assertAllEqual(a[0], b[0], msg=f"epoch {epoch} batch {i}")
                self.assertAllEqual(a[1]["pid"], b[1]["pid"])
                self.assertEqual(ahead._ahead is not None, i + 1 < n)
            plain.on_epoch_end()
            ahead.on_epoch_end()
        # Out of order (Keras' first look at the data, a resumed run): the batch asked for,
        # never the one built ahead.
        self.assertAllEqual(ahead[2][0], plain[2][0])
        self.assertAllEqual(ahead[0][0], plain[0][0])
        # Batch 1 of this epoch is being built ahead; a resume into the next epoch must not
        # take it for that epoch's batch 1.
        self.assertIsNotNone(ahead._ahead)
        plain.on_epoch_end()
        ahead.set_state(plain.get_state())
        self.assertAllEqual(ahead[1][0], plain[1][0])
        with self.assertRaisesRegex(ValueError, "prefetch"):
            self.make(prefetch=2)

    def test_a_bad_frame_built_ahead_fails_at_its_own_batch(self):
        root = os.path.join(self.get_temp_dir(), "synthetic")
        make_synthetic_mars(root, num_identities=12, seed=1, frames_per_tracklet=(3, 6))
        mars = Mars(root)
        data = TrainClipDataset(
            mars.train, None, num_identities=3, num_instances=2, seq_len=4,
            image_size=(32, 16), seed=0, prefetch=1,
        )  # fmt: skip
        first = set(np.asarray(data._batches[0]).tolist())
        victim = next(i for i in np.asarray(data._batches[1]).tolist() if i not in first)
        for frame in mars.train[victim].frames:
            with open(frame, "wb") as f:
                f.write(b"not an image")
        data[0]  # batch 1 is built (and fails) in the background meanwhile
        # Wait until it has failed: the batch being trained on must still not be marked.
        self.assertIsInstance(data._ahead[1].exception(timeout=60), ValueError)
        self.assertIsNone(data.frame_error)
        with self.assertRaisesRegex(ValueError, os.path.basename(mars.train[victim].frames[0])):
            data[1]
        self.assertIsNotNone(data.frame_error)

    def test_corrupt_frame_names_the_file(self):
        root = os.path.join(self.get_temp_dir(), "MARS")
        write_mars_fixture(root)
        mars = Mars(root, attributes=None)
        bad = mars.train[0].frames[1]
        with open(bad, "wb") as f:
            f.write(b"\xff\xd8 truncated")
        data = EvalClipDataset(mars.train[:1], None, seq_len=3, image_size=(16, 8))
        with self.assertRaisesRegex(ValueError, os.path.basename(bad)):
            data[0]

    def test_identity_labels_outside_the_classifier_are_refused(self):
        import dataclasses

        train = list(self.mars.train)
        n = self.mars.num_train_pids
        self.make(num_classes=n)  # relabelled 0..n-1: accepted
        # One identity keeps a dataset id (n + 4): named with the classifier width.
        shifted = [dataclasses.replace(t, pid=n + 4) if t.pid == 0 else t for t in train]
        message = f"largest training identity label is {n + 4} but num_identities is {n}"
        with self.assertRaisesRegex(ValueError, message):
            TrainClipDataset(shifted, None, num_identities=3, num_instances=2, num_classes=n)
        junk = [dataclasses.replace(t, pid=-1) if t.pid == 0 else t for t in train]
        with self.assertRaisesRegex(ValueError, "must be >= 0, found -1"):
            TrainClipDataset(junk, None, num_identities=3, num_instances=2)

    def test_degenerate_batches_are_refused(self):
        with self.assertRaisesRegex(ValueError, "no positive pair"):
            self.make(num_instances=1)
        with self.assertRaisesRegex(ValueError, "no negative"):
            self.make(num_identities=1)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "seq_len"):
            self.make(seq_len=0)
        with self.assertRaisesRegex(ValueError, "identities"):
            self.make(num_identities=100)
        with self.assertRaisesRegex(ValueError, "at least one tracklet"):
            TrainClipDataset([], None)
