import json
import os

import numpy as np
import pytest
from PIL import Image

from keras_asanet.data.mars import Mars
from keras_asanet.data.synthetic import (
    MASK_LABELS,
    SYNTHETIC_VERSION,
    default_synthetic_root,
    make_synthetic_mars,
    mask_path,
)
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


class SyntheticMarsTest(TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile

        cls._tmp = tempfile.TemporaryDirectory()
        cls.root = os.path.join(cls._tmp.name, "synthetic")
        cls.info = make_synthetic_mars(
            cls.root, num_identities=16, seed=3, frames_per_tracklet=(4, 8)
        )
        cls.mars = Mars(cls.root)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_mars_reader_reads_it(self):
        mars = self.mars
        counts = self.info["counts"]
        self.assertEqual(mars.num_train_pids, 8)
        self.assertLen(mars.train, counts["train_tracklets"])
        self.assertLen(mars.query, counts["queries"])
        self.assertLen(
            mars.query + mars.gallery, counts["test_tracklets"] - counts["junk_tracklets"]
        )
        self.assertEqual(mars.attribute_file, os.path.join(self.root, "mars_attributes.csv"))
        train_ids = {t.original_pid for t in mars.train}
        test_ids = {t.pid for t in mars.query + mars.gallery} - {0}
        self.assertFalse(train_ids & test_ids)  # identity-disjoint splits
        self.assertIn(0, {t.pid for t in mars.gallery})  # distractors

    def test_every_query_has_a_gallery_match_from_another_camera_mostly(self):
        gallery = {(t.pid, t.camid) for t in self.mars.gallery}
        valid = [any(p == q.pid and c != q.camid for p, c in gallery) for q in self.mars.query]
        self.assertGreater(np.mean(valid), 0.7)

    def test_attributes_pose_motion_and_quality(self):
        annotated = [t for t in self.mars.train if t.attributes is not None]
        self.assertGreater(len(annotated), 0.8 * len(self.mars.train))
        by_pid = {}
        for t in annotated:
            rel = tuple(t.attributes[a.name] for a in self.mars.attribute_schema.id_relevant)
            by_pid.setdefault(t.pid, set()).add(rel)
        # ID-relevant attributes are a property of the identity...
        self.assertTrue(all(len(v) == 1 for v in by_pid.values()))
        # ...while pose and motion vary per tracklet.
        self.assertGreater(len({(t.pose, t.motion) for t in annotated}), 3)

    def test_masks_beside_frames(self):
        t = self.mars.train[0]
        labels = np.asarray(Image.open(mask_path(t.frames[0])))
        frame = np.asarray(Image.open(t.frames[0]))
        self.assertEqual(labels.shape, frame.shape[:2])
        self.assertTrue(set(np.unique(labels)) <= set(MASK_LABELS.values()))
        self.assertGreater((labels > 0).mean(), 0.05)

    def test_motion_is_visible_and_staying_is_still(self):
        def motion_energy(t):
            masks = [np.asarray(Image.open(mask_path(p))) > 0 for p in t.frames]
            return np.mean([np.mean(a != b) for a, b in zip(masks, masks[1:])])

        tracks = [t for t in self.mars.train + self.mars.gallery if t.attributes is not None]
        running = [motion_energy(t) for t in tracks if t.motion == 1]
        staying = [motion_energy(t) for t in tracks if t.motion == 3]
        # The fixture (16 identities, seed 3) has 5 running and 10 staying tracklets; the
        # comparison must not be skipped for want of either.
        self.assertGreaterEqual(min(len(running), len(staying)), 3)
        self.assertGreater(np.mean(running), np.mean(staying))

    def test_deterministic_and_cached(self):
        other = os.path.join(self.get_temp_dir(), "again")
        make_synthetic_mars(other, num_identities=16, seed=3, frames_per_tracklet=(4, 8))
        a = Mars(self.root).train[3]
        b = Mars(other).train[3]
        with open(a.frames[1], "rb") as fa, open(b.frames[1], "rb") as fb:
            self.assertEqual(fa.read(), fb.read())
        stamp = os.path.getmtime(a.frames[0])
        info = make_synthetic_mars(self.root, num_identities=16, seed=3, frames_per_tracklet=(4, 8))
        self.assertEqual(os.path.getmtime(a.frames[0]), stamp)  # reused, not rewritten
        with open(os.path.join(self.root, "synthetic_info.json")) as f:
            self.assertEqual(json.load(f)["counts"], info["counts"])

    def test_backgrounds_change_per_tracklet_and_per_seed(self):
        """No camera has one background a model could memorise, and another seed shows other
        scenes: compare the background pixels (label 0) of tracklets."""

        def background(t):
            frame = np.asarray(Image.open(t.frames[0]), np.float32)
            labels = np.asarray(Image.open(mask_path(t.frames[0])))
            return frame, labels == 0

        def distance(a, b):
            (fa, ma), (fb, mb) = a, b
            both = ma & mb
            return float(np.abs(fa[both] - fb[both]).mean())

        by_cam = {}
        for t in self.mars.train:
            by_cam.setdefault(t.camid, []).append(t)
        same_camera = [
            distance(background(ts[0]), background(ts[1])) for ts in by_cam.values() if len(ts) > 1
        ]
        self.assertGreater(np.mean(same_camera), 10.0)  # grey levels of 255
        other = os.path.join(self.get_temp_dir(), "seed4")
        make_synthetic_mars(other, num_identities=16, seed=4, frames_per_tracklet=(4, 8))
        from keras_asanet.data.synthetic import _camera

        styles = [_camera(1, seed, (64, 32))["palette"] for seed in (3, 4)]
        self.assertGreater(float(np.abs(styles[0] - styles[1]).mean()), 10.0)
        with open(os.path.join(other, "synthetic_info.json")) as f:
            self.assertEqual(json.load(f)["params"]["version"], SYNTHETIC_VERSION)

    def test_default_root_is_one_folder_per_parameter_set(self):
        a = default_synthetic_root(300, (64, 32), 0, base="/x")
        self.assertEqual(a, f"/x/v{SYNTHETIC_VERSION}-n300-64x32-seed0")
        self.assertNotEqual(a, default_synthetic_root(300, (64, 32), 1, base="/x"))
        self.assertNotEqual(a, default_synthetic_root(100, (64, 32), 0, base="/x"))

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_identities"):
            make_synthetic_mars(self.get_temp_dir(), num_identities=2)
        with self.assertRaisesRegex(ValueError, "frames_per_tracklet"):
            make_synthetic_mars(self.get_temp_dir(), frames_per_tracklet=(5, 2))
        foreign = self.get_temp_dir()
        open(os.path.join(foreign, "precious.txt"), "w").close()
        with self.assertRaisesRegex(FileExistsError, "not a synthetic dataset"):
            make_synthetic_mars(foreign)


class SyntheticBuildSafetyTest(TestCase):
    """A build never deletes what the library did not write, survives being killed halfway and
    runs side by side with another build of the same folder."""

    SMALL = dict(num_identities=8, image_size=(16, 8), frames_per_tracklet=(2, 3))

    def _listing(self, root):
        return sorted(
            os.path.relpath(os.path.join(d, f), root)
            for d, _, files in os.walk(root)
            for f in files
        )

    def test_other_parameters_rebuild_only_the_library_files(self):
        root = os.path.join(self.get_temp_dir(), "data")
        make_synthetic_mars(root, seed=1, **self.SMALL)
        with open(os.path.join(root, "notes.txt"), "w") as f:
            f.write("mine")
        os.makedirs(os.path.join(root, "my_runs"))
        open(os.path.join(root, "my_runs", "model.keras"), "w").close()
        info = make_synthetic_mars(root, seed=2, **self.SMALL)
        self.assertEqual(info["params"]["seed"], 2)
        with open(os.path.join(root, "notes.txt")) as f:
            self.assertEqual(f.read(), "mine")
        self.assertTrue(os.path.isfile(os.path.join(root, "my_runs", "model.keras")))
        fresh = os.path.join(self.get_temp_dir(), "fresh")
        make_synthetic_mars(fresh, seed=2, **self.SMALL)
        mine = {"notes.txt", "my_runs/model.keras"}
        self.assertEqual(set(self._listing(root)) - mine, set(self._listing(fresh)))
        self.assertEqual(len(Mars(root).train), len(Mars(fresh).train))

    def test_a_build_killed_halfway_is_rebuilt(self):
        parent = self.get_temp_dir()
        root = os.path.join(parent, "data")
        # A build that died while replacing an older dataset: the info says incomplete and
        # only part of the files are there.
        make_synthetic_mars(root, seed=1, **self.SMALL)
        with open(os.path.join(root, "synthetic_info.json"), "w") as f:
            json.dump({"params": None, "complete": False}, f)
        import shutil

        shutil.rmtree(os.path.join(root, "bbox_test"))
        # ... and the staging folder a killed build left beside it (its process is gone).
        import socket
        import subprocess
        import sys

        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        stale = f"{root}.building-{socket.gethostname()}-{dead.stdout.strip()}-deadbeef"
        os.makedirs(os.path.join(stale, "bbox_train"))
        info = make_synthetic_mars(root, seed=1, **self.SMALL)
        self.assertTrue(info["complete"])
        self.assertFalse(os.path.exists(stale))
        self.assertEqual(os.listdir(parent), ["data"])
        self.assertGreater(len(Mars(root).query), 0)
        # And the next call reuses it.
        stamp = os.path.getmtime(os.path.join(root, "synthetic_info.json"))
        make_synthetic_mars(root, seed=1, **self.SMALL)
        self.assertEqual(os.path.getmtime(os.path.join(root, "synthetic_info.json")), stamp)

    def test_an_unreadable_info_file_is_a_build_to_redo(self):
        root = os.path.join(self.get_temp_dir(), "data")
        make_synthetic_mars(root, seed=1, **self.SMALL)
        with open(os.path.join(root, "synthetic_info.json"), "w") as f:
            f.write('{"params": {"vers')  # cut short
        info = make_synthetic_mars(root, seed=1, **self.SMALL)
        self.assertTrue(info["complete"])
        with open(os.path.join(root, "synthetic_info.json")) as f:
            self.assertTrue(json.load(f)["complete"])

    def test_concurrent_builds_of_one_folder_both_succeed(self):
        from concurrent.futures import ThreadPoolExecutor

        parent = self.get_temp_dir()
        root = os.path.join(parent, "data")
        with ThreadPoolExecutor(3) as pool:
            infos = list(
                pool.map(lambda _: make_synthetic_mars(root, seed=5, **self.SMALL), range(3))
            )
        self.assertTrue(all(i["complete"] for i in infos))
        self.assertEqual({json.dumps(i["counts"]) for i in infos}, {json.dumps(infos[0]["counts"])})
        self.assertEqual(os.listdir(parent), ["data"])  # no staging folder left
        reference = os.path.join(self.get_temp_dir(), "reference")
        make_synthetic_mars(reference, seed=5, **self.SMALL)
        self.assertEqual(self._listing(root), self._listing(reference))
        for name in self._listing(reference):
            if name.endswith(".jpg"):
                with (
                    open(os.path.join(root, name), "rb") as a,
                    open(os.path.join(reference, name), "rb") as b,
                ):
                    self.assertEqual(a.read(), b.read())

    @pytest.mark.heavy
    def test_a_build_process_killed_midway_leaves_nothing_half_built(self):
        import signal
        import subprocess
        import sys
        import time

        parent = self.get_temp_dir()
        root = os.path.join(parent, "data")
        params = dict(num_identities=60, image_size=(32, 16), seed=7)
        code = (
            "import sys; from keras_asanet.data.synthetic import make_synthetic_mars; "
            f"make_synthetic_mars(sys.argv[1], **{params!r})"
        )
        env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax"))
        process = subprocess.Popen([sys.executable, "-c", code, root], env=env)
        try:
            deadline = time.time() + 120
            while time.time() < deadline and process.poll() is None:
                staging = [e for e in os.listdir(parent) if ".building-" in e]
                frames = staging and os.path.isdir(os.path.join(parent, staging[0], "bbox_train"))
                if frames and os.listdir(os.path.join(parent, staging[0], "bbox_train")):
                    break
                time.sleep(0.05)
            self.assertIsNone(process.poll(), "the build finished before it could be killed")
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait()
        self.assertFalse(os.path.exists(root))  # readers never see half a dataset
        info = make_synthetic_mars(root, **params)
        self.assertTrue(info["complete"])
        self.assertEqual(os.listdir(parent), ["data"])  # the dead build's folder is gone
        self.assertEqual(len(Mars(root).train), info["counts"]["train_tracklets"])
