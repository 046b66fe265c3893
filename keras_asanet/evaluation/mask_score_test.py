import glob
import itertools
import json
import os

import numpy as np
from PIL import Image

from keras_asanet.data.frame_sampling import evenly_spaced
from keras_asanet.evaluation.feature_extraction_test import write_tracklets
from keras_asanet.evaluation.mask_score import (
    MaskScore,
    best_top_k_iou,
    cell_fractions,
    cell_windows,
    centre_prior,
    flat_fraction,
    iter_model_masks,
    mask_score,
    read_label_map,
    top_k_iou,
    top_k_positions,
)
from keras_asanet.tests.test_case import TestCase


class MaskArithmeticTest(TestCase):
    def test_cell_fractions_aligned(self):
        region = np.zeros((4, 4), bool)
        region[:2, :2] = True
        region[3, 3] = True
        np.testing.assert_allclose(cell_fractions(region, (2, 2)), [[1.0, 0.0], [0.0, 0.25]])
        np.testing.assert_allclose(cell_fractions(region, (1, 1)), [[5 / 16]])
        np.testing.assert_allclose(cell_fractions(region, (4, 4)), region.astype(float))

    def test_cell_fractions_unaligned(self):
        # 3 pixel rows into 2 cells of 1.5 rows: cell 0 = row 0 + half of row 1.
        region = np.array([[1], [0], [1]], bool)
        np.testing.assert_allclose(cell_fractions(region, (2, 1)), [[2 / 3], [2 / 3]])
        region = np.array([[1], [1], [0]], bool)
        np.testing.assert_allclose(cell_fractions(region, (2, 1)), [[1.0], [1 / 3]])
        # Batched.
        batch = np.stack([np.ones((3, 2)), np.zeros((3, 2))])
        np.testing.assert_allclose(cell_fractions(batch, (2, 1)), [[[1], [1]], [[0], [0]]])

    def test_top_k_positions_and_ties(self):
        scores = np.array([[3.0, 1.0], [2.0, 0.0]])
        np.testing.assert_array_equal(top_k_positions(scores, 0.5), [[True, False], [True, False]])
        # k = max(1, round(0.1 * 4)) = 1
        np.testing.assert_array_equal(top_k_positions(scores, 0.1), [[True, False], [False, False]])
        # Ties: the lower flat index first.
        ties = np.ones((2, 3))
        np.testing.assert_array_equal(
            top_k_positions(ties, 0.5), [[True, True, True], [False, False, False]]
        )
        with self.assertRaisesRegex(ValueError, "top_k must be a fraction"):
            top_k_positions(scores, 1.5)

    def test_top_k_iou(self):
        scores = np.array([[[3.0, 1.0], [2.0, 0.0]], [[0.0, 0.0], [5.0, 4.0]]])
        region = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]]], bool)
        iou = top_k_iou(scores, region, 0.5)
        # Frame 0: top = {(0,0), (1,0)}, region = {(0,0), (0,1)}: 1 / 3. Frame 1: no region.
        self.assertAlmostEqual(iou[0], 1 / 3)
        self.assertTrue(np.isnan(iou[1]))
        region[1] = [[0, 0], [1, 1]]
        np.testing.assert_allclose(top_k_iou(scores, region, 0.5), [1 / 3, 1.0])
        np.testing.assert_allclose(best_top_k_iou(region, 0.5), [1.0, 1.0])
        np.testing.assert_allclose(best_top_k_iou(region, 0.25), [0.5, 0.5])
        np.testing.assert_allclose(best_top_k_iou(region, 1.0), [0.5, 0.5])

    def test_ties_are_averaged_over_every_way_to_break_them(self):
        # The 4x2 centre prior: its four central cells tie, k = 2 of them are kept.
        prior = centre_prior((4, 2))
        torso = np.zeros((1, 4, 2), bool)
        torso[0, 1, :] = True  # the upper two central cells, which position order picks
        self.assertAlmostEqual(float(top_k_iou(prior, torso, 0.2, ties="position")[0]), 1.0)
        # 1 of the 6 pairs is the torso (IoU 1), 4 share one cell (1/3), 1 misses (0).
        self.assertAlmostEqual(float(top_k_iou(prior, torso, 0.2)[0]), 1 / 6 + 4 / 6 / 3)

        # Against an enumeration of every tie-breaking, on maps with ties of many sizes.
        rng = np.random.default_rng(0)
        scores = rng.integers(0, 3, (200, 3, 3)).astype(float)
        region = rng.random((200, 3, 3)) < 0.4
        region[0] = False
        for top_k in (0.1, 0.3, 0.5, 1.0):
            got = top_k_iou(scores, region, top_k)
            k = max(1, round(top_k * 9))
            for i in range(1, 200):
                s, r = scores[i].ravel(), region[i].ravel()
                kth = np.sort(s)[::-1][k - 1]
                above = list(np.flatnonzero(s > kth))
                tied = np.flatnonzero(s == kth)
                ious = []
                for pick in itertools.combinations(tied, k - len(above)):
                    top = np.zeros(9, bool)
                    top[above + list(pick)] = True
                    ious.append((top & r).sum() / (top | r).sum() if r.any() else np.nan)
                np.testing.assert_allclose(got[i], np.mean(ious), rtol=1e-12)
            self.assertTrue(np.isnan(got[0]))

    def test_tie_tolerance(self):
        scores = np.array([[[1.0, 1.0 + 1e-9], [0.0, 0.0]]])
        region = np.array([[[True, False], [False, False]]])
        # Exact ties only: 1 + 1e-9 is the top cell, outside the region.
        self.assertEqual(float(top_k_iou(scores, region, 0.25)[0]), 0.0)
        # Within the tolerance the two upper cells tie: the region cell half of the time.
        self.assertAlmostEqual(float(top_k_iou(scores, region, 0.25, tie_tolerance=1e-6)[0]), 0.5)
        # A flat map scores chance: k = 1 of 4 cells, 1 of them the region.
        self.assertAlmostEqual(float(top_k_iou(np.full((1, 2, 2), 3.0), region, 0.25)[0]), 0.25)
        with self.assertRaisesRegex(ValueError, "ties must be one of"):
            top_k_iou(scores, region, ties="random")
        with self.assertRaisesRegex(ValueError, "tie_tolerance must be finite and >= 0"):
            top_k_iou(scores, region, tie_tolerance=-1.0)

    def test_cell_windows(self):
        lo, hi = cell_windows(64, 4, "tiled")
        np.testing.assert_allclose(lo, [0, 16, 32, 48])
        np.testing.assert_allclose(hi, [16, 32, 48, 64])
        # Centred on pixel 16 i (its centre 16 i + 0.5): half a cell up / left of the tiles.
        lo, hi = cell_windows(64, 4, "centred")
        np.testing.assert_allclose(lo, [-7.5, 8.5, 24.5, 40.5])
        np.testing.assert_allclose(hi, [8.5, 24.5, 40.5, 56.5])
        with self.assertRaisesRegex(ValueError, "cell layout must be one of"):
            cell_windows(64, 4, "shifted")

    def test_centred_cell_fractions_match_a_sampled_oracle(self):
        """Each cell's covered fraction, counted on a 10x finer lattice of points (exact here:
        every window edge lies on a multiple of 0.1 pixel); points outside the frame count as
        not covered."""
        rng = np.random.default_rng(0)
        region = rng.random((2, 12, 8)) < 0.4
        got = cell_fractions(region, (3, 2), "centred")
        rows_lo, rows_hi = cell_windows(12, 3, "centred")
        cols_lo, cols_hi = cell_windows(8, 2, "centred")
        points = (np.arange(-80, 200) + 0.5) / 10.0  # from -8 to 20 pixels

        def covered(n, i, j):
            ys = points[(points >= rows_lo[i]) & (points < rows_hi[i])]
            xs = points[(points >= cols_lo[j]) & (points < cols_hi[j])]
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            inside = (yy >= 0) & (yy < 12) & (xx >= 0) & (xx < 8)
            value = np.zeros(yy.shape)
            value[inside] = region[n][yy[inside].astype(int), xx[inside].astype(int)]
            return value.mean()

        for n, i, j in itertools.product(range(2), range(3), range(2)):
            self.assertAlmostEqual(got[n, i, j], covered(n, i, j), places=9)
        # The tiled layout is the equal partition of before.
        np.testing.assert_allclose(
            cell_fractions(region, (3, 2), "tiled"), cell_fractions(region, (3, 2))
        )

    def test_centred_centre_prior(self):
        """On a 64x32 frame the 4x2 cells are centred on rows 0.5, 16.5, 32.5, 48.5 and
        columns 0.5, 16.5: the frame's centre (32, 16) is nearest to cell (2, 1), then (1, 1)."""
        prior = centre_prior((4, 2), "centred", (64, 32))
        order = np.argsort(-prior.ravel(), kind="stable")
        self.assertEqual([divmod(int(k), 2) for k in order[:3]], [(2, 1), (1, 1), (3, 1)])
        # The tiled prior ties the four central cells.
        tiled = centre_prior((4, 2))
        np.testing.assert_allclose(tiled[1:3].ravel(), tiled[1, 0])
        with self.assertRaisesRegex(ValueError, "needs the frames' image_size"):
            centre_prior((4, 2), "centred")

    def test_centre_prior(self):
        prior = centre_prior((5, 3))
        self.assertEqual(prior.shape, (5, 3))
        self.assertEqual(np.unravel_index(np.argmax(prior), prior.shape), (2, 1))
        np.testing.assert_allclose(prior, prior[::-1, ::-1])
        # The centre column beats the border at the same row; the middle row beats the top.
        self.assertGreater(prior[2, 1], prior[2, 0])
        self.assertGreater(prior[2, 0], prior[0, 0])
        region = np.zeros((2, 5, 3), bool)
        region[0, 1:4, 1] = True  # a centred person
        region[1, 0, :] = True  # a person in the top row only
        iou = top_k_iou(prior, region, 0.2)  # k = 3: the three central cells of the column
        np.testing.assert_allclose(iou, [1.0, 0.0])


class MaskScoreTest(TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile

        from keras_asanet.data import Mars, make_synthetic_mars
        from keras_asanet.models import ASANet

        cls._tmp = tempfile.TemporaryDirectory()
        root = os.path.join(cls._tmp.name, "synthetic")
        make_synthetic_mars(
            root, num_identities=8, image_size=(32, 16), seed=3, frames_per_tracklet=(3, 6)
        )
        cls.dataset = Mars(root)
        cls.model = ASANet.from_preset("asanet_tiny", num_identities=4, attribute_schema="mars")
        cls.model.build_for_input((None, 2, 64, 32, 3))

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    def test_scores_the_tiny_model(self):
        tracklets = self.dataset.query + self.dataset.gallery
        score = mask_score(
            self.model, tracklets, seq_len=2, image_size=(64, 32), max_tracklets=5, batch_size=2
        )
        self.assertIsInstance(score, MaskScore)
        self.assertEqual(score.grid, (4, 2))
        self.assertEqual(score.num_tracklets, 5)
        self.assertEqual(score.num_frames + score.num_frames_skipped, 5 * 2)
        self.assertGreater(score.num_frames, 0)
        for value in (score.re_iou, score.ir_iou, score.centre_iou):
            self.assertGreaterEqual(value, 0.0)
            self.assertLessEqual(value, score.best_iou + 1e-9)
        self.assertEqual(set(score.regions), {"top", "bottom", "hat", "bag"})
        text = str(score)
        self.assertIn("Mask score: top 20% of the 4x2 mask positions", text)
        self.assertIn("(64x32 input, centred cells)", text)
        self.assertIn("centre prior", text)
        self.assertIn(f"re {score.re_iou:.3f}  ir {score.ir_iou:.3f}", score.one_line())
        d = json.loads(json.dumps(score.to_dict()))
        self.assertEqual(d["grid"], [4, 2])
        self.assertEqual(d["num_tracklets"], 5)

    def test_matches_a_hand_computation(self):
        """One tracklet, scored by hand from the model's masks and the label files."""
        from keras import ops

        tracklet = self.dataset.query[0]
        score = mask_score(self.model, [tracklet], seq_len=3, image_size=(64, 32), top_k=0.25)
        frames = [tracklet.frames[j] for j in evenly_spaced(tracklet.num_frames, 3)]
        clip = np.stack(
            [
                np.asarray(Image.open(f).convert("RGB").resize((32, 64), Image.BILINEAR))
                for f in frames
            ]
        ).astype(np.float32)[None]
        _, masks = self.model(clip, training=False, return_masks=True)
        re = np.asarray(ops.convert_to_numpy(masks["re_mask"]))[0]
        labels = [np.asarray(Image.open(f[:-4] + "_mask.png")) for f in frames]
        person = np.stack([cell_fractions(lab > 0, (4, 2), "centred") >= 0.5 for lab in labels])
        keep = person.any(axis=(1, 2))
        self.assertEqual(score.cell_layout, "centred")
        self.assertEqual(score.num_frames, int(keep.sum()))
        self.assertGreater(score.num_frames, 0)
        expected = np.mean(top_k_iou(re[keep], person[keep], 0.25))
        self.assertAlmostEqual(score.re_iou, expected, places=5)
        prior = centre_prior((4, 2), "centred", (64, 32))
        centre = np.mean(top_k_iou(prior, person[keep], 0.25))
        self.assertAlmostEqual(score.centre_iou, centre, places=9)
        top = np.stack([cell_fractions(lab == 2, (4, 2), "centred") >= 0.5 for lab in labels])
        self.assertTrue(top.any())  # the fixture's query 0 shows its top: the check runs
        self.assertEqual(score.regions["top"]["num_frames"], int(top.any(axis=(1, 2)).sum()))
        # The tiled layout scores the same masks against the equal tiles of the frame.
        tiled = mask_score(
            self.model, [tracklet], seq_len=3, image_size=(64, 32), top_k=0.25, cell_layout="tiled"
        )
        person = np.stack([cell_fractions(lab > 0, (4, 2)) >= 0.5 for lab in labels])
        keep = person.any(axis=(1, 2))
        self.assertAlmostEqual(
            tiled.re_iou, np.mean(top_k_iou(re[keep], person[keep], 0.25)), places=5
        )
        self.assertAlmostEqual(
            tiled.centre_iou, np.mean(top_k_iou(centre_prior((4, 2)), person[keep], 0.25))
        )
        self.assertEqual(tiled.to_dict()["cell_layout"], "tiled")
        with self.assertRaisesRegex(ValueError, "cell layout must be one of"):
            mask_score(self.model, [tracklet], image_size=(64, 32), cell_layout="grid")

    def test_flat_masks_are_counted(self):
        maps = np.zeros((4, 3, 2))
        maps[0] = [[0, 1], [2, 3], [4, 5]]
        maps[1] = 7.0  # constant
        maps[2] = 2.0 + 1e-9 * maps[0]  # constant up to float noise
        maps[3] = maps[0] * 0.001  # a range of 0.005, under 1 % of the values' std (2.5)
        self.assertAlmostEqual(flat_fraction(maps), 0.75)
        self.assertAlmostEqual(flat_fraction(maps[:2]), 0.5)
        self.assertAlmostEqual(flat_fraction(maps[:2], tolerance=0.0), 0.5)

    def test_a_collapsed_attention_is_reported_flat(self):
        """Zero query convolutions make ASRE's softmax uniform: every mask is constant within
        its frame, and the score says so instead of passing the tie order off as a mask."""
        from keras_asanet.models import ASANet

        tracklets = self.dataset.query
        live = mask_score(self.model, tracklets, seq_len=2, image_size=(64, 32))
        self.assertLess(live.re_flat, 0.5)
        self.assertLess(live.ir_flat, 0.5)
        self.assertNotIn("flat masks", live.one_line())
        model = ASANet.from_config(self.model.get_config())
        model.build_for_input((None, 2, 64, 32, 3))
        model.set_weights(self.model.get_weights())
        for asre in (model.re_asre, model.ir_asre):
            for variable in asre.query_conv.weights:
                variable.assign(np.zeros(variable.shape, "float32"))
        collapsed = mask_score(model, tracklets, seq_len=2, image_size=(64, 32))
        self.assertEqual((collapsed.re_flat, collapsed.ir_flat), (1.0, 1.0))
        self.assertIn(
            "flat masks (IoU as chance): re 100%, ir 100% of frames", collapsed.one_line()
        )
        # A flat mask is scored as a random choice of positions, whatever the tie order.
        labels = [
            read_label_map(p)
            for paths, _, _ in iter_model_masks(model, tracklets, seq_len=2, image_size=(64, 32))
            for clip in paths
            for p in clip
        ]
        person = np.stack([cell_fractions(lab > 0, (4, 2), "centred") >= 0.5 for lab in labels])
        person = person[person.any(axis=(1, 2))]
        chance = np.mean(top_k_iou(np.zeros((4, 2)), person, 0.2))
        self.assertAlmostEqual(collapsed.re_iou, chance, places=9)
        self.assertAlmostEqual(collapsed.ir_iou, chance, places=9)
        by_position = mask_score(model, tracklets, seq_len=2, image_size=(64, 32), ties="position")
        self.assertIn("flat masks (IoU by tie order)", by_position.one_line())
        self.assertEqual(by_position.ties, "position")
        self.assertIn("not the mask's choice", str(collapsed))
        self.assertEqual(collapsed.to_dict()["re_flat"], 1.0)

    def test_max_tracklets_is_deterministic_and_spread(self):
        tracklets = self.dataset.gallery
        a = mask_score(self.model, tracklets, seq_len=1, image_size=(64, 32), max_tracklets=3)
        b = mask_score(self.model, tracklets, seq_len=1, image_size=(64, 32), max_tracklets=3)
        self.assertEqual(a.to_dict(), b.to_dict())
        self.assertEqual(a.num_tracklets, 3)

    def test_a_model_with_one_asre(self):
        from keras_asanet.models import ASANet

        model = ASANet.from_preset(
            "asanet_tiny", num_identities=4, attribute_schema="mars", identity_branches=("re", "id")
        )
        model.build_for_input((None, 2, 64, 32, 3))
        score = mask_score(model, self.dataset.query, seq_len=2, image_size=(64, 32))
        self.assertIsNone(score.ir_iou)
        self.assertIsNotNone(score.re_iou)
        self.assertIn("ir-mask n/a", str(score))
        self.assertIn("ir n/a", score.one_line())

    def test_no_masks_is_a_clear_error(self):
        plain = write_tracklets(self.get_temp_dir(), [2, 3])
        with self.assertRaisesRegex(ValueError, "None of the 2 tracklets has ground-truth"):
            mask_score(self.model, plain, image_size=(64, 32))

    def test_missing_label_map_names_the_file(self):
        import shutil

        folder = self.get_temp_dir()
        tracklet = self.dataset.query[0]
        for f in glob.glob(os.path.dirname(tracklet.frames[0]) + "/*"):
            shutil.copy(f, folder)
        frames = tuple(os.path.join(folder, os.path.basename(f)) for f in tracklet.frames)
        os.remove(frames[-1][:-4] + "_mask.png")
        import dataclasses

        broken = dataclasses.replace(tracklet, frames=frames)
        with self.assertRaisesRegex(ValueError, "_mask.png' of frame"):
            mask_score(self.model, [broken], seq_len=tracklet.num_frames, image_size=(64, 32))
