import os

import numpy as np
from PIL import Image

from keras_asanet.tests.test_case import TestCase
from keras_asanet.visualization import (
    pick_queries,
    plot_model_retrieval,
    plot_retrieval_grid,
    rank_gallery,
)
from keras_asanet.visualization._figures import (
    MATCH_COLOUR,
    MISMATCH_COLOUR,
    QUERY_COLOUR,
    figure_pixels,
)
from keras_asanet.visualization._testing import synthetic_dataset


def _border_pixel(fig, ax, pixels):
    """The rendered colour in the middle of the axis' left spine."""
    box = ax.get_window_extent()
    x = int(round(box.x0))
    y = pixels.shape[0] - int(round((box.y0 + box.y1) / 2))
    return pixels[y, x]


class RankGalleryTest(TestCase):
    def test_protocol_removal_order_and_ties(self):
        distances = np.array([[0.5, 0.1, 0.2, 0.2, 0.9]])
        (r,) = rank_gallery(
            distances, [3], [3, 3, 5, 3, 0], [1], [2, 1, 0, 2, 0], top_k=4
        )  # item 1: same pid and camera as the query, removed
        self.assertAllEqual(r.gallery, [2, 3, 0, 4])  # 2 before 3: the tie keeps gallery order
        self.assertAllEqual(r.matches, [False, True, True, False])
        self.assertAllClose(r.distances, [0.2, 0.2, 0.5, 0.9])

    def test_pick_queries_only_scored_ones(self):
        # query 1 has its identity only in its own camera: not scored, never picked.
        picked = pick_queries([1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 0, 1], num_queries=5)
        self.assertAllEqual(picked, [0, 2])


class RetrievalGridTest(TestCase):
    @classmethod
    def setUpClass(cls):
        _, cls.dataset = synthetic_dataset()

    def test_borders_titles_and_file(self):
        query, gallery = self.dataset.query, self.dataset.gallery
        rng = np.random.default_rng(0)
        distances = rng.uniform(size=(len(query), len(gallery)))
        path = os.path.join(self.get_temp_dir(), "retrieval.png")
        fig = plot_retrieval_grid(query, gallery, distances=distances, queries=[0, 3],
                                  top_k=4, path=path)  # fmt: skip
        self.assertLen(fig.axes, 2 * 5)
        pixels = figure_pixels(fig)
        for row, q in enumerate((0, 3)):
            expected = rank_gallery(
                distances,
                [t.pid for t in query],
                [t.pid for t in gallery],
                [t.camid for t in query],
                [t.camid for t in gallery],
                queries=[q],
                top_k=4,
            )[0]
            self.assertAllEqual(fig.retrievals[row].gallery, expected.gallery)
            q_ax = fig.axes[row * 5]
            self.assertEqual(
                q_ax.get_title(), f"query\ncam {query[q].camid + 1}\npid {query[q].original_pid}"
            )
            self.assertAllClose(_border_pixel(fig, q_ax, pixels), 255 * np.array(QUERY_COLOUR),
                                atol=2)  # fmt: skip
            for k, g in enumerate(expected.gallery):
                ax = fig.axes[row * 5 + 1 + k]
                item = gallery[g]
                self.assertEqual(
                    ax.get_title(), f"rank {k + 1}\ncam {item.camid + 1}\npid {item.original_pid}"
                )
                match = item.pid == query[q].pid
                self.assertEqual(bool(expected.matches[k]), match)
                colour = MATCH_COLOUR if match else MISMATCH_COLOUR
                self.assertAllClose(ax.spines["left"].get_edgecolor()[:3], colour)
                self.assertAllClose(_border_pixel(fig, ax, pixels), 255 * np.array(colour),
                                    atol=2)  # fmt: skip
                # the representative frame: the tracklet's middle frame
                shown = np.asarray(ax.images[0].get_array())
                with Image.open(item.frames[item.num_frames // 2]) as frame:
                    self.assertAllEqual(shown, np.asarray(frame.convert("RGB")))
        with Image.open(path) as image:
            self.assertEqual(image.format, "PNG")
            width, height = fig.get_size_inches() * fig.dpi
            self.assertEqual(image.size, (round(width), round(height)))
        # Both kinds of border appear in this grid (the check above saw each colour).
        matches = np.concatenate([r.matches for r in fig.retrievals])
        self.assertTrue(matches.any() and not matches.all())

    def test_features_and_a_model_rank_like_the_evaluation(self):
        """A callable "model" whose feature is the clip's mean colour: plot_model_retrieval
        extracts features as the evaluation does, ranks them and draws the same grid as
        plot_retrieval_grid on those features."""
        from keras_asanet.evaluation import extract_features, mars_protocol

        def mean_colour(clips):
            return np.asarray(clips).mean(axis=(1, 2, 3))

        fig = plot_model_retrieval(
            mean_colour, self.dataset, num_queries=3, top_k=3, seq_len=2,
            image_size=(32, 16), verbose=False, num_workers=1,
        )  # fmt: skip
        protocol = mars_protocol(self.dataset)
        feats, _, _ = extract_features(
            mean_colour, protocol.tracklets, seq_len=2, image_size=(32, 16), verbose=False,
            num_workers=1,
        )  # fmt: skip
        qf, gf, *_ = protocol.split(feats)
        direct = plot_retrieval_grid(
            protocol.query_tracklets, protocol.gallery_tracklets, query_features=qf,
            gallery_features=gf, num_queries=3, top_k=3,
        )  # fmt: skip
        self.assertLen(fig.retrievals, 3)
        for a, b in zip(fig.retrievals, direct.retrievals):
            self.assertEqual(a.query, b.query)
            self.assertAllEqual(a.gallery, b.gallery)
        with self.assertRaisesRegex(ValueError, "Give distances"):
            plot_retrieval_grid(self.dataset.query, self.dataset.gallery)
