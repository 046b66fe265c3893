import os

import keras

from keras_asanet.data.image_io import FrameError, check_frames, find_bad_frames, read_frame
from keras_asanet.data.mars import Mars
from keras_asanet.data.pipelines import TrainClipDataset
from keras_asanet.tests.fixtures import write_mars_fixture
from keras_asanet.tests.test_case import TestCase


def truncate(path):
    """Cuts a frame file in half, as an interrupted copy leaves it (PIL still opens it)."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


class BadFramesTest(TestCase):
    def setUp(self):
        super().setUp()
        root = os.path.join(self.get_temp_dir(), "MARS")
        write_mars_fixture(root)
        self.mars = Mars(root, attributes=None)

    def test_one_line_error_naming_the_file(self):
        bad = self.mars.train[0].frames[0]
        truncate(bad)
        with self.assertRaises(FrameError) as ctx:
            read_frame(bad)
        message = str(ctx.exception)
        self.assertIn(repr(bad), message)
        self.assertRegex(message, "(?i)truncated")
        self.assertNotIn("\n", message)
        self.assertIsInstance(ctx.exception, ValueError)

    def test_bad_frame_in_a_training_tracklet(self):
        # Every frame of one identity is cut, so the first epoch reaches one of them.
        pid = self.mars.train[0].pid
        bad = [f for t in self.mars.train if t.pid == pid for f in t.frames]
        for path in bad:
            truncate(path)
        data = TrainClipDataset(self.mars.train, None, 2, 2, seq_len=2, image_size=(16, 8))
        with self.assertRaises(FrameError) as ctx:
            for i in range(len(data)):
                data[i]
        self.assertTrue(any(repr(p) in str(ctx.exception) for p in bad), ctx.exception)
        self.assertIs(data.frame_error, ctx.exception)  # kept for the runner

    def test_bad_frame_in_an_evaluated_tracklet(self):
        from keras_asanet.evaluation.feature_extraction import extract_features

        query = self.mars.query[0]
        truncate(query.frames[-1])
        inputs = keras.Input((2, 16, 8, 3))
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling3D()(inputs))
        with self.assertRaisesRegex(FrameError, repr(query.frames[-1])):
            extract_features(model, self.mars.query, seq_len=2, image_size=(16, 8), verbose=False)

    def test_check_frames_reports_every_bad_file(self):
        frames = [f for t in [*self.mars.train, *self.mars.query, *self.mars.gallery]
                  for f in t.frames]  # fmt: skip
        frames = list(dict.fromkeys(frames))
        self.assertEqual(check_frames(frames, workers=2), len(frames))
        bad = frames[:12]
        for path in bad[:6]:
            truncate(path)
        for path in bad[6:]:
            with open(path, "wb") as f:
                f.write(b"not an image")
        self.assertEqual([p for p, _ in find_bad_frames(frames, workers=2)], bad)
        with self.assertRaises(FrameError) as ctx:
            check_frames(frames, workers=2)
        message = str(ctx.exception)
        self.assertIn(f"12 of {len(frames)} frame files cannot be decoded", message)
        for path in bad[:10]:
            self.assertIn(repr(path), message)
        self.assertNotIn(repr(bad[10]), message)
        self.assertIn("(and 2 more)", message)
