import os
import sys
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from keras_asanet.data.tracklet import Tracklet
from keras_asanet.tests.test_case import TestCase
from keras_asanet.visualization import plot_tsne, tracklet_labels, tsne_embedding

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


def _clusters(seed=0):
    """Four identities, eight points each, far apart in 16-D; pose drawn independently."""
    rng = np.random.default_rng(seed)
    centres = 20.0 * rng.normal(size=(4, 16))
    pids = np.repeat(np.arange(4), 8)
    features = centres[pids] + rng.normal(size=(32, 16))
    pose = rng.integers(0, 3, 32)
    pose[0] = -1
    return features, pids, pose


class TSNETest(TestCase):
    def test_identity_clusters_survive_and_colours_follow_labels(self):
        features, pids, pose = _clusters()
        path = os.path.join(self.get_temp_dir(), "tsne.png")
        fig = plot_tsne(features, pids, pose, "pose", class_names=("a", "b", "c"), path=path)
        embedding = fig.embedding
        self.assertEqual(embedding.shape, (32, 2))
        # Each point's nearest neighbour in the embedding has its identity.
        d = np.linalg.norm(embedding[:, None] - embedding[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        self.assertAllEqual(pids[d.argmin(axis=1)], pids)
        left, right = fig.axes
        for ax, labels in ((left, pids), (right, pose)):
            (points,) = ax.collections
            self.assertAllClose(points.get_offsets(), embedding)
            colours = points.get_facecolors()
            for value in np.unique(labels):  # one colour per label value, distinct values
                same = colours[labels == value]
                self.assertAllClose(same, np.repeat(same[:1], len(same), axis=0))
            self.assertLen({tuple(colours[labels == v][0]) for v in np.unique(labels)},
                           len(np.unique(labels)))  # fmt: skip
        self.assertAllClose(right.collections[0].get_facecolors()[0], [0.6, 0.6, 0.6, 1.0])
        legend = [t.get_text() for t in right.get_legend().get_texts()]
        self.assertEqual(legend, ["a", "b", "c", "unknown"])
        self.assertEqual(left.get_title(), "t-SNE coloured by identity (4 values)")
        with Image.open(path) as image:
            self.assertEqual((image.format, image.size), ("PNG", (840, 400)))
        # Deterministic for a seed.
        self.assertAllClose(tsne_embedding(features, seed=0), embedding)

    def test_precomputed_embedding_and_labels_from_tracklets(self):
        tracklets = [
            Tracklet(("f.jpg",), pid=p, camid=c, tracklet_id=0, original_pid=p,
                     attributes=None if p == 3 else {"pose": p % 2, "motion": 4})
            for p, c in ((1, 0), (2, 1), (3, 0))
        ]  # fmt: skip
        self.assertAllEqual(tracklet_labels(tracklets, "pid"), [1, 2, 3])
        self.assertAllEqual(tracklet_labels(tracklets, "camid"), [0, 1, 0])
        self.assertAllEqual(tracklet_labels(tracklets, "pose"), [1, 0, -1])
        self.assertAllEqual(tracklet_labels(tracklets, "motion"), [4, 4, -1])
        embedding = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
        fig = plot_tsne(np.zeros((3, 2)), [1, 2, 3], embedding=embedding)
        self.assertLen(fig.axes, 1)
        self.assertAllClose(fig.axes[0].collections[0].get_offsets(), embedding)

    def test_missing_scikit_learn_names_the_extra(self):
        with mock.patch.dict(sys.modules, {"sklearn.manifold": None}):
            with self.assertRaisesRegex(ImportError, r'pip install "keras_asanet\[vis\]"'):
                tsne_embedding(np.zeros((5, 2)))
            # A precomputed embedding needs no scikit-learn.
            plot_tsne(np.zeros((3, 2)), [1, 2, 3], embedding=np.eye(3)[:, :2])
