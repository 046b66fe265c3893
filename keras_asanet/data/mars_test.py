import os

import numpy as np
import pytest
import scipy.io

from keras_asanet.data.mars import Mars
from keras_asanet.tests.fixtures import (
    MARS_CSV_HEADER,
    write_attribute_csv,
    write_mars_fixture,
)
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


class MarsTest(TestCase):
    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.get_temp_dir(), "MARS")
        self.names = write_mars_fixture(self.root)

    def test_splits_counts_and_relabelling(self):
        mars = Mars(self.root, attributes=None)
        self.assertLen(mars.train, 5)
        # Train ids 3, 7, 12 relabelled in sorted order; the original id is kept.
        self.assertEqual(
            [(t.original_pid, t.pid) for t in mars.train], [(7, 1), (7, 1), (3, 0), (3, 0), (12, 2)]
        )
        self.assertEqual(mars.num_train_pids, 3)
        # Query = query_IDX rows (1, 4, 8) in that order; junk (row 7) dropped everywhere.
        self.assertEqual(
            [(t.pid, t.camid, t.tracklet_id) for t in mars.query],
            [(5, 0, 1), (9, 2, 1), (11, 1, 1)],
        )
        self.assertEqual(
            [(t.pid, t.camid, t.tracklet_id) for t in mars.gallery],
            [(5, 1, 1), (5, 0, 2), (9, 0, 1), (0, 1, 1)],
        )
        all_pids = {t.original_pid for t in mars.train + mars.query + mars.gallery}
        self.assertNotIn(-1, all_pids)
        self.assertIn(0, {t.pid for t in mars.gallery})  # distractor kept in the gallery

    def test_frame_paths_in_order(self):
        mars = Mars(self.root, attributes=None)
        first = mars.train[0]
        self.assertEqual(
            [os.path.basename(p) for p in first.frames],
            ["0007C1T0001F001.jpg", "0007C1T0001F002.jpg", "0007C1T0001F003.jpg"],
        )
        self.assertTrue(
            all(p.startswith(os.path.join(self.root, "bbox_train", "0007")) for p in first.frames)
        )
        self.assertTrue(all(os.path.isfile(p) for t in mars.query for p in t.frames))

    def test_attribute_join_by_pid_camera_tracklet(self):
        csv = os.path.join(self.get_temp_dir(), "attrs.csv")
        row = [7, 2, 1, 1, 4, 1, 0, 0, 0, 0, 0, 0, 3, 2, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1]
        other = [5, 1, 2, 0, 0] + [0] * 7 + [8, 9, 3] + [1] * 9
        write_attribute_csv(csv, MARS_CSV_HEADER, [row, other])
        mars = Mars(self.root, attributes=csv)
        by_key = {(t.original_pid, t.camid, t.tracklet_id): t for t in mars.train + mars.gallery}
        t = by_key[(7, 1, 1)]  # camera 2 -> camid 1
        self.assertEqual(t.motion, 1)
        self.assertEqual(t.pose, 4)
        self.assertEqual(t.attributes["top_color"], 3)
        self.assertEqual(t.quality["occlusion"], 1)
        self.assertEqual(by_key[(5, 0, 2)].attributes["bottom_color"], 9)
        self.assertIsNone(by_key[(7, 0, 1)].attributes)  # no row -> no attributes
        self.assertIn("annotated", mars.summary())

    def test_root_attribute_file_is_used_by_auto(self):
        write_attribute_csv(
            os.path.join(self.root, "mars_attributes.csv"),
            MARS_CSV_HEADER,
            [[3, 1, 1, 2, 2] + [0] * 7 + [0] * 12],
        )
        mars = Mars(self.root)
        self.assertEqual(mars.attribute_file, os.path.join(self.root, "mars_attributes.csv"))
        self.assertEqual(mars.train[2].motion, 2)

    def test_missing_root_and_subfolders(self):
        with self.assertRaisesRegex(FileNotFoundError, "does not exist"):
            Mars(os.path.join(self.root, "nope"))
        os.rename(os.path.join(self.root, "bbox_test"), os.path.join(self.root, "moved"))
        with self.assertRaisesRegex(FileNotFoundError, "bbox_test"):
            Mars(self.root, attributes=None)

    def test_mat_with_wrong_shape(self):
        path = os.path.join(self.root, "info", "tracks_train_info.mat")
        scipy.io.savemat(path, {"track_train_info": np.ones((3, 3))})
        with self.assertRaisesRegex(ValueError, r"tracks_train_info.mat.*\(N, 4\)"):
            Mars(self.root, attributes=None)

    def test_mat_with_wrong_key(self):
        path = os.path.join(self.root, "info", "query_IDX.mat")
        scipy.io.savemat(path, {"queries": np.ones((1, 2))})
        with self.assertRaisesRegex(ValueError, "query_IDX"):
            Mars(self.root, attributes=None)

    def test_corrupt_mat_file(self):
        with open(os.path.join(self.root, "info", "tracks_test_info.mat"), "wb") as f:
            f.write(b"not a mat file")
        with self.assertRaisesRegex(ValueError, "tracks_test_info.mat"):
            Mars(self.root, attributes=None)

    def test_name_list_shorter_than_rows(self):
        path = os.path.join(self.root, "info", "train_name.txt")
        with open(path) as f:
            lines = f.read().split()
        with open(path, "w") as f:
            f.write("\n".join(lines[:-3]))
        with self.assertRaisesRegex(ValueError, "name list is shorter"):
            Mars(self.root, attributes=None)

    def test_empty_tracklet_row(self):
        path = os.path.join(self.root, "info", "tracks_train_info.mat")
        rows = scipy.io.loadmat(path)["track_train_info"]
        rows[1, 1] = rows[1, 0] - 1  # end before start
        scipy.io.savemat(path, {"track_train_info": rows})
        with self.assertRaisesRegex(ValueError, "empty tracklet"):
            Mars(self.root, attributes=None)

    def test_query_index_out_of_range(self):
        scipy.io.savemat(
            os.path.join(self.root, "info", "query_IDX.mat"), {"query_IDX": np.array([[1, 99]])}
        )
        with self.assertRaisesRegex(ValueError, "1..9"):
            Mars(self.root, attributes=None)

    def test_missing_frame_file(self):
        os.remove(os.path.join(self.root, "bbox_train", "0003", "0003C1T0001F004.jpg"))
        with self.assertRaisesRegex(FileNotFoundError, "0003C1T0001F004.jpg"):
            Mars(self.root, attributes=None)
