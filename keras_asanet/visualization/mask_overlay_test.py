import os

import numpy as np
from PIL import Image

from keras_asanet.tests.test_case import TestCase
from keras_asanet.visualization import (
    mask_extent,
    normalise_mask,
    plot_mask_overlay,
    plot_model_masks,
)
from keras_asanet.visualization._testing import synthetic_dataset


class PlantedMaskModel:
    """A stand-in for an ASA-Net's `return_masks=True` call: its masks are planted from the
    clip (the ID-relevant mask is each frame's red channel averaged over a 2 x 1 grid, the
    ID-irrelevant one its negative), so the figure's content is known exactly."""

    def __init__(self):
        self.calls = []

    def __call__(self, clips, training=False, return_masks=False):
        clips = np.asarray(clips)
        self.calls.append(clips)
        b, t, h, w, _ = clips.shape
        red = clips[..., 0].reshape(b, t, 2, h // 2, 1, w).mean(axis=(3, 5))
        return np.zeros((b, 4)), {"re_mask": red, "ir_mask": -red}


class MaskOverlayTest(TestCase):
    @classmethod
    def setUpClass(cls):
        _, cls.dataset = synthetic_dataset()

    def test_panels_hold_frames_scaled_masks_and_the_person_outline(self):
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, (3, 8, 4, 3)).astype(np.uint8)
        re = rng.normal(size=(3, 2, 1))
        person = np.zeros((3, 16, 8), bool)
        person[:, 4:12, 2:6] = True
        person[2] = False  # no person in the last frame: no outline there
        path = os.path.join(self.get_temp_dir(), "masks.png")
        fig = plot_mask_overlay(frames, {"re_mask": re, "ir_mask": None}, person, "t", path=path)
        axes = np.array(fig.axes).reshape(2, 3)  # frames row, one mask row (ir_mask is None)
        self.assertEqual(axes[1, 0].get_ylabel(), "ID-relevant mask")
        scaled = (re - re.min()) / (re.max() - re.min())
        self.assertAllClose(normalise_mask(re), scaled)
        for t in range(3):
            self.assertAllEqual(np.asarray(axes[0, t].images[0].get_array()), frames[t])
            frame, mask = axes[1, t].images
            self.assertAllEqual(np.asarray(frame.get_array()), frames[t])
            self.assertAllClose(np.asarray(mask.get_array()), scaled[t])
            # Each of the 2 x 1 cells (stride 4) over the 4 x 4 window centred on pixel
            # (4 i, 0), where ASA-Net's feature (i, 0) is centred: half a cell up and left.
            self.assertEqual(mask.get_extent(), [-2.0, 2.0, 6.0, -2.0])
            self.assertEqual(
                [axes[1, t].get_xlim(), axes[1, t].get_ylim()], [(-0.5, 3.5), (7.5, -0.5)]
            )
            outlines = [c for ax in axes[:, t] for c in ax.collections]
            self.assertLen(outlines, 0 if t == 2 else 2)
        # The outline follows the person, resized to the frames' 8 x 4: rows 2-5, cols 1-2.
        (contour,) = axes[0, 0].collections
        vertices = np.concatenate([p.vertices for p in contour.get_paths()])
        self.assertAllClose(vertices.min(axis=0), [0.5, 1.5], atol=0.51)
        self.assertAllClose(vertices.max(axis=0), [2.5, 5.5], atol=0.51)
        tiled = plot_mask_overlay(frames, {"re_mask": re}, cell_layout="tiled")
        self.assertEqual(tiled.axes[3].images[1].get_extent(), [-0.5, 3.5, 7.5, -0.5])
        self.assertEqual(mask_extent((8, 4), (8, 4)), (-0.5, 3.5, 7.5, -0.5))  # pixel on pixel
        with Image.open(path) as image:
            width, height = fig.get_size_inches() * fig.dpi
            self.assertEqual((image.format, image.size), ("PNG", (round(width), round(height))))
        with self.assertRaisesRegex(ValueError, r"masks\['re_mask'\] must be \(3, h, w\)"):
            plot_mask_overlay(frames, {"re_mask": re[:2]})

    def test_model_masks_are_the_scored_masks_with_the_ground_truth(self):
        from keras_asanet.data.frame_sampling import evenly_spaced
        from keras_asanet.data.image_io import read_frame
        from keras_asanet.evaluation.mask_score import read_label_map

        model = PlantedMaskModel()
        tracklet = self.dataset.query[0]
        fig = plot_model_masks(model, tracklet, seq_len=3, image_size=(32, 16))
        (clips,) = model.calls
        paths = [tracklet.frames[i] for i in evenly_spaced(tracklet.num_frames, 3)]
        self.assertAllEqual(clips[0], np.stack([read_frame(p, (32, 16)) for p in paths]))
        axes = np.array(fig.axes).reshape(3, 3)
        _, masks = model(clips, return_masks=True)
        for row, key in ((1, "re_mask"), (2, "ir_mask")):
            for t in range(3):
                shown = np.asarray(axes[row, t].images[1].get_array())
                self.assertAllClose(shown, normalise_mask(masks[key][0])[t])
        self.assertEqual(axes[2, 0].get_ylabel(), "ID-irrelevant mask")
        self.assertEqual(
            fig._suptitle.get_text(),
            f"pid {tracklet.original_pid}, camera {tracklet.camid + 1}",
        )
        # The synthetic label maps are outlined on every panel (same size as the frames).
        person = read_label_map(paths[0]) > 0
        self.assertTrue(person.any())
        self.assertLen(axes[1, 0].collections, 1)
        vertices = np.concatenate([p.vertices for p in axes[1, 0].collections[0].get_paths()])
        rows, cols = np.nonzero(person)
        self.assertAllClose(vertices.min(axis=0), [cols.min(), rows.min()], atol=0.51)
        self.assertAllClose(vertices.max(axis=0), [cols.max(), rows.max()], atol=0.51)
