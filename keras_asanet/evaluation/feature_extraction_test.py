import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_asanet.data.tracklet import Tracklet
from keras_asanet.evaluation.feature_extraction import (
    clip_plan,
    extract_features,
    resolve_image_size,
)
from keras_asanet.tests.cross_backend import partner_backends
from keras_asanet.tests.test_case import TestCase

H, W = 8, 6
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_tracklets(folder, lengths, size=(H, W), ramp=False):
    """Tiny JPEG tracklets; frame k of tracklet i has a distinct colour pattern (with `ramp`,
    also a left-to-right ramp in green, so that a mirrored frame differs)."""
    tracklets = []
    for i, n in enumerate(lengths):
        frames = []
        for k in range(n):
            img = np.zeros((size[0], size[1], 3), np.uint8)
            img[..., 0] = 10 + 30 * k
            img[..., 1] = 200 - 40 * i
            img[: size[0] // 2, :, 2] = 7 * (k + i)
            if ramp:
                img[..., 1] = np.linspace(0, 240, size[1]).astype(np.uint8)[None, :]
            path = os.path.join(folder, f"t{i}_f{k:03d}.jpg")
            Image.fromarray(img).save(path, quality=95)
            frames.append(path)
        tracklets.append(
            Tracklet(
                frames=tuple(frames), pid=i + 1, camid=i % 2, tracklet_id=i, original_pid=i + 1
            )
        )
    return tracklets


def decode(path):
    """The test's own decoding (PIL, RGB, float32)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), np.float32)


def clip_of(tracklet, indices):
    return np.stack([decode(tracklet.frames[j]) for j in indices])


def numpy_model(clips):
    """A feature that depends on every frame and on frame order: mean, first and last frame
    means, and the mean of the red channel."""
    return np.stack(
        [
            clips.mean(axis=(1, 2, 3, 4)),
            clips[:, 0].mean(axis=(1, 2, 3)),
            clips[:, -1].mean(axis=(1, 2, 3)),
            clips[..., 0].mean(axis=(1, 2, 3)),
        ],
        axis=1,
    )


def tiny_keras_model(seq_len=3):
    inputs = keras.Input((seq_len, H, W, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, padding="same", activation="relu"))(
        x
    )
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(5)(x)
    return keras.Model(inputs, outputs)


class TwoOutputs(keras.Model):
    """A feature, or with `as_dict=True` a dict of it and its double (like ASANet's
    `return_dict`)."""

    def __init__(self):
        super().__init__()
        self.pool = keras.layers.GlobalAveragePooling3D()
        self.dense = keras.layers.Dense(3)

    def build(self, input_shape):  # (batch, T, H, W, C): the dense layer sees C
        self.dense.build((input_shape[0], input_shape[-1]))

    def call(self, clips, as_dict=False):
        feature = self.dense(self.pool(clips / 255.0))
        return {"feature": feature, "double": 2.0 * feature} if as_dict else feature


class ExtractFeaturesTest(TestCase):
    def setUp(self):
        super().setUp()
        self.folder = self.get_temp_dir()
        self.tracklets = write_tracklets(self.folder, [7, 2, 4])

    def test_dense_averages_every_chunk(self):
        batches = []

        def model(clips):
            batches.append(clips.shape)
            return numpy_model(clips)

        feats, pids, camids = extract_features(
            model,
            self.tracklets,
            "dense",
            seq_len=3,
            batch_size=2,
            image_size=(H, W),
            verbose=False,
        )
        t0, t1, t2 = self.tracklets
        # 7 frames -> [0 1 2] [3 4 5] [6 6 6]; 2 -> [0 1 1]; 4 -> [0 1 2] [3 3 3]
        expected = np.stack(
            [
                np.mean(
                    [
                        numpy_model(clip_of(t0, c)[None])[0]
                        for c in ([0, 1, 2], [3, 4, 5], [6, 6, 6])
                    ],
                    axis=0,
                ),
                numpy_model(clip_of(t1, [0, 1, 1])[None])[0],
                np.mean(
                    [numpy_model(clip_of(t2, c)[None])[0] for c in ([0, 1, 2], [3, 3, 3])], axis=0
                ),
            ]
        )
        self.assertAllClose(feats, expected, atol=1e-4, rtol=1e-6)
        self.assertEqual(feats.dtype, np.float32)
        np.testing.assert_array_equal(pids, [1, 2, 3])
        np.testing.assert_array_equal(camids, [0, 1, 0])
        # 6 clips in batches of exactly 2 (never more): the long tracklet spans batches.
        self.assertEqual(batches, [(2, 3, H, W, 3)] * 3)

    def test_sampled_takes_evenly_spaced_frames(self):
        feats, _, _ = extract_features(
            numpy_model,
            self.tracklets,
            "sampled",
            seq_len=3,
            batch_size=2,
            image_size=(H, W),
            verbose=False,
        )
        t0, t1, t2 = self.tracklets
        # middles of 3 equal chunks: 7 -> [1 3 5]; 2 -> [0 1 1]; 4 -> [0 2 3]
        expected = np.concatenate(
            [
                numpy_model(clip_of(t0, [1, 3, 5])[None]),
                numpy_model(clip_of(t1, [0, 1, 1])[None]),
                numpy_model(clip_of(t2, [0, 2, 3])[None]),
            ]
        )
        self.assertAllClose(feats, expected, atol=1e-4, rtol=1e-6)

    def test_padding_does_not_change_features(self):
        kwargs = dict(mode="dense", seq_len=3, batch_size=4, image_size=(H, W), verbose=False)
        padded = extract_features(numpy_model, self.tracklets, pad_batches=True, **kwargs)
        plain = extract_features(
            numpy_model, self.tracklets, pad_batches=False, num_workers=1, **kwargs
        )
        self.assertAllClose(padded.features, plain.features, atol=0, rtol=0)

    def test_frames_are_resized(self):
        seen = []

        def model(clips):
            seen.append(clips.shape[2:])
            self.assertGreaterEqual(clips.min(), 0.0)
            self.assertLessEqual(clips.max(), 255.0)
            return numpy_model(clips)

        extract_features(
            model, self.tracklets, "sampled", seq_len=2, image_size=(16, 12), verbose=False
        )
        self.assertEqual(set(seen), {(16, 12, 3)})

    def test_subclassed_model_is_fed_the_size_it_was_built_for(self):
        # A subclassed model has no input_shape; the 256x128 default would silently give
        # other features for a model built (and trained) at another size.
        model = TwoOutputs()
        model.build((None, 2, H, W, 3))
        self.assertEqual(resolve_image_size(model), (H, W))
        self.assertEqual(resolve_image_size(model, (16, 12)), (16, 12))
        feats, _, _ = extract_features(model, self.tracklets, "sampled", seq_len=2, verbose=False)
        t0, t1, t2 = self.tracklets
        clips = np.stack([clip_of(t0, [1, 5]), clip_of(t1, [0, 1]), clip_of(t2, [1, 3])])
        self.assertAllClose(feats, model.predict(clips, verbose=0), atol=1e-5, rtol=1e-5)
        self.assertEqual(resolve_image_size(TwoOutputs()), (256, 128))  # unbuilt: the default

    def test_keras_model_and_dict_outputs(self):
        model = tiny_keras_model()
        feats, _, _ = extract_features(
            model, self.tracklets, "sampled", seq_len=3, batch_size=2, verbose=False
        )
        t0, t1, t2 = self.tracklets
        clips = np.stack([clip_of(t0, [1, 3, 5]), clip_of(t1, [0, 1, 1]), clip_of(t2, [0, 2, 3])])
        self.assertAllClose(feats, model.predict(clips, verbose=0), atol=1e-5, rtol=1e-5)

        def dict_model(clips):
            return {"feature": numpy_model(clips), "id_irrelevant": numpy_model(clips)[:, :2]}

        out, _, _ = extract_features(
            dict_model, self.tracklets, "dense", seq_len=3, image_size=(H, W), verbose=False
        )
        ref, _, _ = extract_features(
            numpy_model, self.tracklets, "dense", seq_len=3, image_size=(H, W), verbose=False
        )
        self.assertEqual(sorted(out), ["feature", "id_irrelevant"])
        self.assertAllClose(out["feature"], ref)
        self.assertAllClose(out["id_irrelevant"], ref[:, :2])

    def test_flip_averages_each_clip_with_its_mirror(self):
        def left_and_right(clips):
            # Depends on the orientation: the first and the last pixel column's mean.
            left = clips[:, :, :, 0].mean(axis=(1, 2, 3))
            right = clips[:, :, :, -1].mean(axis=(1, 2, 3))
            return {"feature": np.stack([left, right], 1), "left": left[:, None]}

        seen = []

        def model(clips):
            seen.append(clips[:, :, :, 0].copy())
            return left_and_right(clips)

        tracklets = write_tracklets(self.folder, [7, 2, 4], ramp=True)
        kw = dict(mode="dense", seq_len=3, batch_size=2, image_size=(H, W), verbose=False)
        plain, _, _ = extract_features(left_and_right, tracklets, **kw)
        flipped, _, _ = extract_features(model, tracklets, flip=True, **kw)
        # The oracle: each clip's [left, right] averaged with its mirror's [right, left].
        mean = (plain["feature"][:, 0] + plain["feature"][:, 1]) / 2
        self.assertAllClose(flipped["feature"], np.stack([mean, mean], 1), atol=1e-5)
        self.assertAllClose(flipped["left"][:, 0], mean, atol=1e-5)
        # The frames differ left to right, so the flip changed something it could not fake.
        self.assertGreater(np.abs(plain["feature"][:, 0] - plain["feature"][:, 1]).max(), 1.0)
        # Two calls per batch (as given, then mirrored), 3 batches of the 6 clips.
        self.assertEqual(len(seen), 6)
        # A Keras model: the same as averaging its predictions on the mirrored clips by hand.
        keras_model = tiny_keras_model()
        feats, _, _ = extract_features(
            keras_model, tracklets, "sampled", seq_len=3, batch_size=2, flip=True, verbose=False
        )
        t0, t1, t2 = tracklets
        clips = np.stack([clip_of(t0, [1, 3, 5]), clip_of(t1, [0, 1, 1]), clip_of(t2, [0, 2, 3])])
        as_given = keras_model.predict(clips, verbose=0)
        mirrored = keras_model.predict(clips[:, :, :, ::-1], verbose=0)
        self.assertGreater(np.abs(as_given - mirrored).max(), 1e-3)
        self.assertAllClose(feats, (as_given + mirrored) / 2, atol=1e-5, rtol=1e-5)

    def test_call_kwargs_reach_every_call_and_leave_the_model_alone(self):
        model = TwoOutputs()
        kw = dict(mode="dense", seq_len=3, batch_size=2, image_size=(H, W), verbose=False)
        plain, _, _ = extract_features(model, self.tracklets, **kw)
        predict_function = model.predict_function
        self.assertIsNotNone(predict_function)
        out, _, _ = extract_features(model, self.tracklets, call_kwargs={"as_dict": True}, **kw)
        self.assertEqual(sorted(out), ["double", "feature"])
        self.assertAllClose(out["feature"], plain, atol=1e-6)
        self.assertAllClose(out["double"], 2.0 * plain, atol=1e-6)
        # The model's own compiled predict function is kept, and still returns the feature.
        self.assertIs(model.predict_function, predict_function)
        again, _, _ = extract_features(model, self.tracklets, **kw)
        self.assertAllClose(again, plain)
        # A plain callable gets the keyword arguments too.
        calls = []

        def numpy_two_outputs(clips, as_dict=False):
            calls.append(as_dict)
            return {"feature": numpy_model(clips)} if as_dict else numpy_model(clips)

        out, _, _ = extract_features(
            numpy_two_outputs, self.tracklets, call_kwargs={"as_dict": True}, **kw
        )
        self.assertTrue(calls and all(calls))
        ref, _, _ = extract_features(numpy_model, self.tracklets, **kw)
        self.assertAllClose(out["feature"], ref)

    def test_clip_dtype_reaches_the_model_and_asanet_reads_uint8_alike(self):
        from keras_asanet.evaluation.feature_extraction import _resolve_clip_dtype
        from keras_asanet.models import ASANet

        seen = []

        def spy(clips):
            seen.append(clips.dtype)
            return numpy_model(clips)

        as_uint8, _, _ = extract_features(spy, self.tracklets, seq_len=3, batch_size=2,
                                          verbose=False, clip_dtype="uint8")  # fmt: skip
        self.assertEqual(set(seen), {np.dtype(np.uint8)})
        seen.clear()
        default, _, _ = extract_features(spy, self.tracklets, seq_len=3, batch_size=2,
                                         verbose=False)  # fmt: skip
        self.assertEqual(set(seen), {np.dtype(np.float32)})  # any other model: float32
        self.assertAllClose(as_uint8, default, atol=1e-4)
        with self.assertRaisesRegex(ValueError, "clip_dtype must be one of"):
            extract_features(spy, self.tracklets, seq_len=3, verbose=False, clip_dtype="int8")

        # An ASANet gets uint8 by default, and its features are those of float32 clips.
        model = ASANet(
            num_identities=0,
            backbone={"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 0, 0, 0)},
            attribute_branch_blocks=1,
            branch_dim=8,
        )
        self.assertEqual(_resolve_clip_dtype(model, None), "uint8")
        folder = self.get_temp_dir()
        tracklets = write_tracklets(folder, [5, 3], size=(32, 16))
        kwargs = dict(seq_len=2, batch_size=2, image_size=(32, 16), verbose=False)
        auto, _, _ = extract_features(model, tracklets, **kwargs)
        floats, _, _ = extract_features(model, tracklets, clip_dtype="float32", **kwargs)
        self.assertAllClose(auto, floats, atol=1e-4, rtol=1e-4)

    def test_clip_plan(self):
        plan = [(i, c.tolist()) for i, c in clip_plan(self.tracklets, "dense", 3)]
        self.assertEqual(
            plan,
            [
                (0, [0, 1, 2]),
                (0, [3, 4, 5]),
                (0, [6, 6, 6]),
                (1, [0, 1, 1]),
                (2, [0, 1, 2]),
                (2, [3, 3, 3]),
            ],
        )

    def test_bad_input(self):
        kw = dict(image_size=(H, W), verbose=False)
        with self.assertRaisesRegex(ValueError, "tracklets is empty"):
            extract_features(numpy_model, [], **kw)
        with self.assertRaisesRegex(ValueError, "mode must be one of"):
            extract_features(numpy_model, self.tracklets, mode="all", **kw)
        with self.assertRaisesRegex(ValueError, "batch_size must be >= 1"):
            extract_features(numpy_model, self.tracklets, batch_size=0, **kw)
        with self.assertRaisesRegex(ValueError, r"expected \(32, D\)"):
            extract_features(lambda c: c.mean(axis=(2, 3, 4)).reshape(-1), self.tracklets, **kw)
        with self.assertRaisesRegex(ValueError, "NaN or inf"):
            extract_features(lambda c: np.full((len(c), 2), np.nan), self.tracklets, **kw)
        with self.assertRaisesRegex(
            ValueError, "seq_len=6 but the model's input takes clips of 3 frames"
        ):
            extract_features(tiny_keras_model(3), self.tracklets, seq_len=6, verbose=False)
        with self.assertRaisesRegex(ValueError, "model must be a Keras model"):
            extract_features("not a model", self.tracklets, **kw)
        missing = Tracklet(
            frames=(os.path.join(self.folder, "nope.jpg"),),
            pid=1,
            camid=0,
            tracklet_id=9,
            original_pid=1,
        )
        with self.assertRaisesRegex(ValueError, "nope.jpg"):
            extract_features(numpy_model, [missing], **kw)


CROSS_BACKEND_SCRIPT = """
import sys
import numpy as np
import keras
from keras_asanet.evaluation.feature_extraction import extract_features
from keras_asanet.evaluation.feature_extraction_test import write_tracklets
model = keras.saving.load_model(sys.argv[1])
tracklets = write_tracklets(sys.argv[2], [7, 2, 4])
feats, _, _ = extract_features(model, tracklets, "dense", seq_len=3, batch_size=2, verbose=False)
np.save(sys.argv[3], feats)
"""


@pytest.mark.heavy
@pytest.mark.subprocess
class CrossBackendTest(TestCase):
    def test_same_features_on_every_backend(self):
        folder = self.get_temp_dir()
        model = tiny_keras_model()
        path = os.path.join(folder, "tiny.keras")
        model.save(path)
        tracklets = write_tracklets(folder, [7, 2, 4])
        here, _, _ = extract_features(
            model, tracklets, "dense", seq_len=3, batch_size=2, verbose=False
        )
        current = keras.backend.backend()
        # The partner backend(s), each in its own process (see keras_asanet.tests.cross_backend).
        procs = {}
        for backend in partner_backends():
            out = os.path.join(folder, f"{backend}.npy")
            frames = os.path.join(folder, backend)
            os.makedirs(frames)
            env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
            procs[backend] = (
                out,
                subprocess.Popen(
                    [sys.executable, "-c", CROSS_BACKEND_SCRIPT, path, frames, out],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        for backend, (out, proc) in procs.items():
            _, stderr = proc.communicate(timeout=300)
            self.assertEqual(proc.returncode, 0, msg=stderr[-3000:])
            self.assertAllClose(
                np.load(out), here, atol=1e-5, rtol=1e-5, msg=f"{backend} vs {current}"
            )
