import os

import numpy as np
import pytest
from PIL import Image

from keras_asanet.data.attributes import AttributeSchema
from keras_asanet.data.tracklet import Tracklet
from keras_asanet.evaluation.attribute_accuracy import attribute_accuracy
from keras_asanet.tests.test_case import TestCase
from keras_asanet.visualization import attribute_confusion, plot_attribute_confusion

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


def _tracklets(schema, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        row = {a.name: int(rng.integers(a.num_classes)) for a in schema.attributes}
        out.append(Tracklet(("f.jpg",), pid=i, camid=0, tracklet_id=i, original_pid=i,
                            attributes=None if i == 0 else row))  # fmt: skip
    return out


class AttributeConfusionTest(TestCase):
    def setUp(self):
        super().setUp()
        self.schema = AttributeSchema.for_dataset("mars")
        self.tracklets = _tracklets(self.schema, 30, seed=1)
        rng = np.random.default_rng(2)
        self.re = rng.normal(size=(30, self.schema.id_relevant_dim))
        self.ir = rng.normal(size=(30, self.schema.id_irrelevant_dim))

    def test_counts_by_hand_and_accuracy_as_the_evaluation(self):
        confusions = attribute_confusion(self.schema, self.re, self.ir, self.tracklets)
        self.assertEqual([c.name for c in confusions], [a.name for a in self.schema.attributes])
        accuracy = attribute_accuracy(self.schema, self.re, self.ir, self.tracklets)
        for conf in confusions:
            self.assertEqual(conf.counts.sum(), 29)  # the unannotated tracklet is left out
            self.assertAlmostEqual(conf.accuracy, accuracy.per_attribute[conf.name])
        # pose by hand: arg-max over its 6 slots of the ID-irrelevant head.
        pose = next(c for c in confusions if c.name == "pose")
        slots = self.ir[1:, self.schema.slot_slice("pose")]
        expected = np.zeros((6, 6), int)
        for t, p in zip(self.tracklets[1:], slots.argmax(axis=1)):
            expected[t.attributes["pose"], p] += 1
        self.assertAllEqual(pose.counts, expected)
        self.assertEqual(pose.class_names, self.schema["pose"].class_names)
        # a binary attribute: logit > 0.
        hat = next(c for c in confusions if c.name == "hat")
        predicted = (self.re[1:, self.schema.slot_slice("hat").start] > 0).astype(int)
        truth = np.array([t.attributes["hat"] for t in self.tracklets[1:]])
        self.assertEqual(hat.counts[1, 1], int(np.sum((truth == 1) & (predicted == 1))))
        self.assertEqual(hat.counts[0, 1], int(np.sum((truth == 0) & (predicted == 1))))

    def test_one_group_and_errors(self):
        confusions = attribute_confusion(self.schema, None, self.ir, self.tracklets)
        self.assertEqual([c.name for c in confusions], ["motion", "pose"])
        with self.assertRaisesRegex(ValueError, "both None"):
            attribute_confusion(self.schema, None, None, self.tracklets)
        with self.assertRaisesRegex(ValueError, "id_irrelevant_logits must have shape"):
            attribute_confusion(self.schema, None, self.ir[:5], self.tracklets)

    def test_figure_panels_show_the_row_normalised_matrices(self):
        confusions = attribute_confusion(self.schema, self.re, self.ir, self.tracklets)
        path = os.path.join(self.get_temp_dir(), "attributes.png")
        fig = plot_attribute_confusion(confusions, columns=5, path=path)
        self.assertLen(fig.axes, 15)  # 14 attributes on a 3 x 5 grid, one cell switched off
        self.assertFalse(fig.axes[-1].axison)
        for ax, conf in zip(fig.axes, confusions):
            rates = np.asarray(ax.images[0].get_array())
            totals = conf.counts.sum(axis=1, keepdims=True)
            self.assertAllClose(rates, conf.counts / np.maximum(totals, 1))
            self.assertEqual(ax.get_title(), f"{conf.name}: {100 * conf.accuracy:.0f}%")
        pose_ax = fig.axes[[c.name for c in confusions].index("pose")]
        self.assertLen(pose_ax.texts, 36)  # counts printed in the cells (6 classes)
        with Image.open(path) as image:
            self.assertEqual((image.format, image.size), ("PNG", (1150, 720)))
