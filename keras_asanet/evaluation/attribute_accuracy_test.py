import numpy as np
import pytest

from keras_asanet.data.attributes import AttributeSchema
from keras_asanet.data.tracklet import Tracklet
from keras_asanet.evaluation.attribute_accuracy import attribute_accuracy
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent

SCHEMA = AttributeSchema.for_dataset("mars")


def _row(**values):
    row = {a.name: 0 for a in SCHEMA.attributes}
    row.update(values)
    return row


def _tracklet(tid, row):
    return Tracklet(
        frames=("x.jpg",), pid=1, camid=0, tracklet_id=tid, original_pid=1, attributes=row
    )


def _perfect_logits(rows):
    """Logits whose decoding gives back each row: +1 on the true slot / a true binary,
    -1 elsewhere."""
    re, ir = [], []
    for row in rows:
        r, i, _ = SCHEMA.encode(row)
        re.append(2 * r - 1)
        ir.append(2 * i - 1)
    return np.array(re), np.array(ir)


class AttributeAccuracyTest(TestCase):
    def setUp(self):
        super().setUp()
        self.rows = [
            _row(top_color=3, gender=1, age=2, motion=1, pose=4),
            _row(top_color=8, gender=0, age=0, motion=0, pose=5),
        ]
        self.tracklets = [
            _tracklet(1, self.rows[0]),
            _tracklet(2, None),
            _tracklet(3, self.rows[1]),
        ]
        re, ir = _perfect_logits([self.rows[0], self.rows[0], self.rows[1]])
        self.re, self.ir = re.astype("float32"), ir.astype("float32")

    def test_perfect_predictions(self):
        acc = attribute_accuracy(SCHEMA, self.re, self.ir, self.tracklets)
        self.assertEqual(acc.num_tracklets, 2)
        self.assertEqual(acc.num_skipped, 1)
        self.assertLen(acc.per_attribute, 14)  # 12 ID-relevant + motion + pose
        self.assertEqual(acc.mean_accuracy, 1.0)

    def test_hand_counted_mistakes(self):
        re, ir = self.re.copy(), self.ir.copy()
        top = SCHEMA.slot_slice("top_color")
        re[2, top] = -1.0
        re[2, top.start + 5] = 3.0  # tracklet 3: top colour 5 instead of 8 (arg-max)
        re[0, SCHEMA.slot_slice("gender")] = -2.0  # tracklet 1: gender 0 instead of 1
        re[1, SCHEMA.slot_slice("gender")] = 5.0  # tracklet 2 has no row: ignored
        pose = SCHEMA.slot_slice("pose")
        ir[0, pose.start + 4] = -1.0
        ir[0, pose.start + 1] = 0.5  # tracklet 1: pose 1 instead of 4
        acc = attribute_accuracy(SCHEMA, re, ir, self.tracklets)
        self.assertEqual(acc.per_attribute["top_color"], 0.5)
        self.assertEqual(acc.per_attribute["gender"], 0.5)
        self.assertEqual(acc.per_attribute["pose"], 0.5)
        self.assertEqual(acc.per_attribute["age"], 1.0)
        self.assertEqual(acc.per_attribute["motion"], 1.0)
        self.assertAlmostEqual(acc.group_mean["id_relevant"], 11 / 12)
        self.assertAlmostEqual(acc.group_mean["id_irrelevant"], 0.75)
        self.assertAlmostEqual(acc.mean_accuracy, 12.5 / 14)
        d = acc.to_dict()
        self.assertAlmostEqual(d["per_attribute"]["pose"], 0.5)
        self.assertIn("2 annotated tracklets", str(acc))
        self.assertIn("top_color", str(acc))

    def test_one_group_only(self):
        acc = attribute_accuracy(SCHEMA, None, self.ir, self.tracklets)
        self.assertEqual(sorted(acc.per_attribute), ["motion", "pose"])
        self.assertEqual(list(acc.group_mean), ["id_irrelevant"])

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"id_relevant_logits must have shape \(3, 32\)"):
            attribute_accuracy(SCHEMA, self.re[:, :30], self.ir, self.tracklets)
        with self.assertRaisesRegex(ValueError, r"id_irrelevant_logits must have shape \(3, 11\)"):
            attribute_accuracy(SCHEMA, self.re, self.ir[:2], self.tracklets)
        bad = self.ir.copy()
        bad[0, 0] = np.nan
        with self.assertRaisesRegex(ValueError, "id_irrelevant_logits contains NaN"):
            attribute_accuracy(SCHEMA, self.re, bad, self.tracklets)
        with self.assertRaisesRegex(ValueError, "both None"):
            attribute_accuracy(SCHEMA, None, None, self.tracklets)
        with self.assertRaisesRegex(ValueError, "None of the 1 tracklets"):
            attribute_accuracy(SCHEMA, self.re[:1], self.ir[:1], [_tracklet(5, None)])
