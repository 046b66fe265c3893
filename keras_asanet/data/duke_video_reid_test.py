import os
import shutil

import pytest

from keras_asanet.data.duke_video_reid import DukeVideoReID
from keras_asanet.tests.fixtures import (
    DUKE_CSV_HEADER,
    write_attribute_csv,
    write_duke_fixture,
    write_jpeg,
)
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


class DukeVideoReIDTest(TestCase):
    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.get_temp_dir(), "DukeMTMC-VideoReID")
        write_duke_fixture(self.root)

    def test_splits_cameras_and_order(self):
        duke = DukeVideoReID(self.root, attributes=None)
        self.assertEqual(
            [(t.original_pid, t.pid, t.camid, t.tracklet_id) for t in duke.train],
            [(2, 0, 5, 1), (2, 0, 0, 2), (40, 1, 2, 7)],
        )
        self.assertEqual([(t.pid, t.camid) for t in duke.query], [(8, 1)])
        self.assertEqual([(t.pid, t.camid) for t in duke.gallery], [(8, 4), (8, 1), (17, 3)])
        frames = [os.path.basename(p) for p in duke.train[1].frames]
        self.assertEqual(
            frames,
            ["0002_C1_F0010_X30823.jpg", "0002_C1_F0011_X30823.jpg", "0002_C1_F0012_X30823.jpg"],
        )
        self.assertEqual(duke.num_train_pids, 2)

    def test_attribute_join_and_muti_person_spelling(self):
        csv = os.path.join(self.get_temp_dir(), "duke.csv")
        write_attribute_csv(
            csv, DUKE_CSV_HEADER, [[2, 6, 1, 3, 5, 0, 0, 1, 0, 0, 0, 0] + [1] * 8 + [7, 8]]
        )
        duke = DukeVideoReID(self.root, attributes=csv)
        t = duke.train[0]
        self.assertEqual((t.motion, t.pose), (3, 5))
        self.assertEqual(t.quality["multi_person"], 1)
        self.assertEqual(t.attributes["top_color"], 8)
        self.assertIsNone(duke.train[1].attributes)

    def test_empty_tracklet_folder(self):
        os.makedirs(os.path.join(self.root, "gallery", "0017", "0099"))
        with self.assertRaisesRegex(ValueError, "0099: empty tracklet"):
            DukeVideoReID(self.root, attributes=None)

    def test_frame_of_another_camera(self):
        write_jpeg(os.path.join(self.root, "train", "0002", "0001", "0002_C3_F0102_X1.jpg"))
        with self.assertRaisesRegex(ValueError, "cameras"):
            DukeVideoReID(self.root, attributes=None)

    def test_bad_frame_name(self):
        write_jpeg(os.path.join(self.root, "query", "0008", "0011", "frame1.jpg"))
        with self.assertRaisesRegex(ValueError, "frame1.jpg"):
            DukeVideoReID(self.root, attributes=None)

    def test_missing_split(self):
        shutil.rmtree(os.path.join(self.root, "query"))
        with self.assertRaisesRegex(FileNotFoundError, "query"):
            DukeVideoReID(self.root, attributes=None)
