import numpy as np
import pytest

from keras_asanet.data.clip_augmentation import IMAGENET_MEAN_PIXELS, ClipAugmentation
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


def _clip(t=4, h=32, w=16):
    # Each frame differs, each pixel position is unique: transforms can be traced exactly.
    base = np.arange(h * w, dtype=np.float32).reshape(h, w)
    return np.stack([np.stack([base + 1000 * f] * 3, -1) for f in range(t)])


class ClipAugmentationTest(TestCase):
    def test_same_transform_for_every_frame(self):
        aug = ClipAugmentation(flip_probability=0.5, padding=4, erasing_probability=1.0)
        clip = _clip()
        for seed in range(20):
            out = aug(clip.copy(), np.random.default_rng(seed))
            self.assertEqual(out.shape, clip.shape)
            # Frame f is frame 0 + 1000 f wherever it is not padding or erased.
            for f in range(1, 4):
                moved = (out[0] != 0) & (out[0] != IMAGENET_MEAN_PIXELS[0])
                np.testing.assert_array_equal(
                    out[f][..., 0][moved[..., 0]], out[0][..., 0][moved[..., 0]] + 1000 * f
                )
                erased0 = np.isclose(out[0], IMAGENET_MEAN_PIXELS).all(-1)
                erasedf = np.isclose(out[f], IMAGENET_MEAN_PIXELS).all(-1)
                np.testing.assert_array_equal(erased0, erasedf)

    def test_flip_only(self):
        aug = ClipAugmentation(flip_probability=1.0, padding=0, erasing_probability=0.0)
        clip = _clip()
        np.testing.assert_array_equal(aug(clip, np.random.default_rng(0)), clip[:, :, ::-1])

    def test_crop_is_a_shift_of_the_padded_clip(self):
        aug = ClipAugmentation(flip_probability=0.0, padding=3, erasing_probability=0.0)
        clip = _clip() + 1
        out = aug(clip, np.random.default_rng(4))
        ys, xs = np.nonzero(out[0, ..., 0])
        dy = int(out[0, ys[0], xs[0], 0] - 1) // 16 - ys[0]
        dx = int(out[0, ys[0], xs[0], 0] - 1) % 16 - xs[0]
        self.assertTrue(-3 <= dy <= 3 and -3 <= dx <= 3)
        np.testing.assert_array_equal(out[0, ys, xs], clip[0, ys + dy, xs + dx])

    def test_erasing_area_and_aspect(self):
        aug = ClipAugmentation()
        rng = np.random.default_rng(0)
        areas, aspects = [], []
        for _ in range(500):
            y0, y1, x0, x1 = aug.erasing_box(256, 128, rng)
            areas.append((y1 - y0) * (x1 - x0) / (256 * 128))
            aspects.append((y1 - y0) / (x1 - x0))
        self.assertTrue(0.015 < min(areas) and max(areas) < 0.42)
        self.assertTrue(0.25 < min(aspects) and max(aspects) < 3.6)
        self.assertGreater(max(aspects) / min(aspects), 4)

    def test_erasing_probability(self):
        aug = ClipAugmentation(flip_probability=0.0, padding=0, erasing_probability=0.5)
        clip = _clip() + 5000
        erased = [
            np.isclose(aug(clip.copy(), np.random.default_rng(s)), IMAGENET_MEAN_PIXELS).any()
            for s in range(200)
        ]
        self.assertTrue(0.35 < np.mean(erased) < 0.65)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "flip_probability"):
            ClipAugmentation(flip_probability=1.5)
        with self.assertRaisesRegex(ValueError, "erasing_area"):
            ClipAugmentation(erasing_area=(0.5, 0.1))
        with self.assertRaisesRegex(ValueError, r"\(T, H, W, 3\)"):
            ClipAugmentation()(np.zeros((4, 8, 3)), np.random.default_rng(0))


class ClipTransformTest(TestCase):
    def test_pipeline_path_equals_call(self):
        # The pipeline flips while decoding (PIL) and applies the rest; same result as __call__.
        aug = ClipAugmentation(flip_probability=1.0, padding=5, erasing_probability=1.0)
        clip = (_clip() % 256).astype(np.uint8)
        expected = aug(clip, np.random.default_rng(3))
        transform = aug.draw(32, 16, np.random.default_rng(3))
        self.assertTrue(transform.flip)
        out = np.empty(clip.shape, np.float32)
        aug.apply_into(np.ascontiguousarray(clip[:, :, ::-1]), out, transform, flipped=True)
        np.testing.assert_array_equal(out, expected)


class ColorJitterTest(TestCase):
    def test_one_gain_per_clip_and_channel_within_bounds(self):
        aug = ClipAugmentation(
            flip_probability=0.0, padding=0, erasing_probability=0.0, color_jitter=0.4
        )
        clip = np.full((3, 8, 4, 3), 100.0, np.float32)
        out = aug(clip, np.random.default_rng(0))
        gains = out[0, 0, 0] / 100.0
        self.assertAllClose(out / 100.0, np.broadcast_to(gains, out.shape), atol=1e-5)
        self.assertTrue(np.all(gains >= 0.6 * 0.8 - 1e-6) and np.all(gains <= 1.4 * 1.2 + 1e-6))
        self.assertFalse(np.allclose(gains, gains[0]))  # a tint, not only a brightness
        bright = aug(np.full((1, 2, 2, 3), 250.0, np.float32), np.random.default_rng(3))
        self.assertLessEqual(float(bright.max()), 255.0)

    def test_off_by_default_and_leaves_the_other_draws_unchanged(self):
        plain = ClipAugmentation()
        self.assertIsNone(plain.draw(16, 8, np.random.default_rng(1)).gain)
        jitter = ClipAugmentation(color_jitter=0.3)
        a = plain.draw(16, 8, np.random.default_rng(1))
        b = jitter.draw(16, 8, np.random.default_rng(1))
        self.assertEqual((a.flip, a.shift, a.erase), (b.flip, b.shift, b.erase))
        with self.assertRaisesRegex(ValueError, "color_jitter"):
            ClipAugmentation(color_jitter=1.5)
