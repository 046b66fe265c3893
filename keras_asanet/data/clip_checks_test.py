import dataclasses
import os
import warnings

import keras
import numpy as np

from keras_asanet.data.clip_augmentation import ClipAugmentation
from keras_asanet.data.clip_checks import check_clip_batch
from keras_asanet.data.mars import Mars
from keras_asanet.data.pipelines import TrainClipDataset
from keras_asanet.tests.fixtures import write_jpeg, write_mars_fixture
from keras_asanet.tests.test_case import TestCase


@dataclasses.dataclass
class UnitRange(ClipAugmentation):
    """A user augmentation that scales pixels to [0, 1] (or writes a NaN)."""

    nan: bool = False

    def apply_into(self, clip, out, transform, flipped=False):
        super().apply_into(clip, out, transform, flipped)
        out /= 255.0
        if self.nan:
            out[0, 0, 0, 0] = np.nan


def _range_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [w for w in caught if "expects RGB pixels in [0, 255]" in str(w.message)]


class ClipChecksTest(TestCase):
    def setUp(self):
        super().setUp()
        root = os.path.join(self.get_temp_dir(), "MARS")
        write_mars_fixture(root)
        self.mars = Mars(root, attributes=None)

    def pipeline(self, augmentation):
        shape = dict(seq_len=2, image_size=(16, 8))
        return TrainClipDataset(self.mars.train, None, 2, 2, augmentation=augmentation, **shape)

    def test_training_batches_in_unit_range_warn_once_per_pipeline(self):
        data = self.pipeline(UnitRange(flip_probability=0.0, padding=0))
        found = _range_warnings(lambda: [data[i] for i in range(len(data))])
        self.assertLen(found, 1)
        self.assertIn("TrainClipDataset batch 0", str(found[0].message))
        self.assertLen(_range_warnings(lambda: data[0]), 0)  # once per pipeline
        other = self.pipeline(UnitRange(flip_probability=0.0, padding=0))
        self.assertLen(_range_warnings(lambda: other[0]), 1)
        # The usual 0..255 batches say nothing.
        self.assertLen(_range_warnings(lambda: self.pipeline(False)[0]), 0)

    def test_nan_in_a_training_batch_is_refused(self):
        data = self.pipeline(UnitRange(flip_probability=0.0, padding=0, nan=True))  # 1 a clip
        with self.assertRaisesRegex(ValueError, "TrainClipDataset batch 0: .* 4 NaN or inf"):
            data[0]
        with self.assertRaisesRegex(ValueError, "2 NaN or inf"):
            check_clip_batch(np.array([np.inf, -np.inf, 3.0], np.float32))

    def test_feature_extraction_warns_once_per_model(self):
        from keras_asanet.data.tracklet import Tracklet
        from keras_asanet.evaluation.feature_extraction import extract_features

        folder = self.get_temp_dir()
        frames = []
        for i in range(2):  # black frames decode to all-zero clips, max 0 <= 1
            frames.append(os.path.join(folder, f"f{i}.jpg"))
            write_jpeg(frames[-1], colour=(0, 0, 0))
        tracklets = [Tracklet(tuple(frames), pid=1, camid=0, tracklet_id=1, original_pid=1)]

        def model():
            inputs = keras.Input((2, 16, 8, 3))
            outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling3D()(inputs))
            return keras.Model(inputs, outputs)

        first = model()

        def run(m):
            extract_features(m, tracklets, seq_len=2, image_size=(16, 8), verbose=False)

        found = _range_warnings(lambda: run(first))
        self.assertLen(found, 1)
        self.assertIn(
            "extract_features: the largest pixel value of the clip batch is 0",
            str(found[0].message),
        )
        self.assertLen(_range_warnings(lambda: run(first)), 0)
        self.assertLen(_range_warnings(lambda: run(model())), 1)
