import os

import numpy as np
import pytest

from keras_asanet.data.attributes import (
    DUKE_SCHEMA,
    MARS_SCHEMA,
    AttributeSchema,
    builtin_attribute_csv,
)
from keras_asanet.tests.fixtures import MARS_CSV_HEADER, write_attribute_csv
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


class AttributeSchemaTest(TestCase):
    def test_head_widths_match_the_paper(self):
        self.assertEqual(MARS_SCHEMA.id_relevant_dim, 32)  # 9 + 10 + 4 + 9 binary
        self.assertEqual(DUKE_SCHEMA.id_relevant_dim, 25)  # 8 binary + 8 + 9
        self.assertEqual(MARS_SCHEMA.id_irrelevant_dim, 11)  # motion 5 + pose 6
        self.assertEqual(DUKE_SCHEMA.id_irrelevant_dim, 11)

    def test_encode_one_hot_and_binary_slots(self):
        row = {a.name: 0 for a in MARS_SCHEMA.attributes}
        row.update(top_color=2, bottom_color=9, age=3, hat=1, motion=4, pose=1)
        re, ir, mask = MARS_SCHEMA.encode(row)
        self.assertEqual(mask, 1.0)
        expected = np.zeros(32, "float32")
        expected[2] = 1  # top colour class 2
        expected[9 + 9] = 1  # bottom colour class 9
        expected[19 + 3] = 1  # age class 3
        expected[23 + 4] = 1  # hat is the 5th binary attribute
        np.testing.assert_array_equal(re, expected)
        np.testing.assert_array_equal(ir, np.eye(11)[4] + np.eye(11)[5 + 1])
        decoded = MARS_SCHEMA.decode(np.where(re > 0, 5.0, -5.0)[None], "id_relevant")
        self.assertEqual(decoded["bottom_color"][0], 9)
        self.assertEqual(decoded["hat"][0], 1)
        self.assertEqual(decoded["gender"][0], 0)

    def test_unannotated_rows_are_masked(self):
        re, ir, mask = MARS_SCHEMA.encode(None)
        self.assertEqual(mask, 0.0)
        self.assertFalse(re.any() or ir.any())

    def test_positive_ratios_count_each_slot_over_annotated_rows(self):
        base = {a.name: 0 for a in MARS_SCHEMA.attributes}
        rows = [
            dict(base, top_color=2, hat=1, pose=1),
            dict(base, top_color=2, hat=0, pose=3),
            None,  # unannotated: not counted
            dict(base, top_color=5, hat=1, pose=3),
            dict(base, top_color=2, hat=0, pose=3),
        ]
        ratios = MARS_SCHEMA.positive_ratios(rows)
        self.assertEqual(len(ratios), 43)
        self.assertEqual(ratios[2], 0.75)  # top colour class 2 in 3 of 4 rows
        self.assertEqual(ratios[5], 0.25)
        self.assertEqual(ratios[23 + 4], 0.5)  # hat
        self.assertEqual(ratios[32 + 5 + 3], 0.75)  # pose class 3
        self.assertEqual(ratios[32 + 0], 1.0)  # motion class 0 in every row
        with self.assertRaisesRegex(ValueError, "annotated row"):
            MARS_SCHEMA.positive_ratios([None, None])

    def test_unknown_attribute_name(self):
        with self.assertRaisesRegex(KeyError, "colour_of_shoes"):
            MARS_SCHEMA["colour_of_shoes"]
        with self.assertRaisesRegex(ValueError, "Unknown attribute schema"):
            AttributeSchema.for_dataset("market")

    def test_builtin_files_read_completely(self):
        mars = MARS_SCHEMA.read_csv(builtin_attribute_csv("mars"))
        duke = DUKE_SCHEMA.read_csv(builtin_attribute_csv("duke"))
        self.assertLen(mars, 16360)
        self.assertLen(duke, 4832)
        attrs, quality = mars[(1, 2, 58)]
        self.assertEqual(attrs["top_color"], 8)
        self.assertEqual(attrs["pose"], 3)
        self.assertEqual(
            set(quality),
            {
                "occlusion",
                "cut_out",
                "multi_person",
                "background_dominant",
                "target_change",
                "target_miss",
                "wrong_target",
            },
        )
        self.assertIn("multi_person", duke[(1, 2, 1)][1])  # Duke's `muti-person`

    def test_missing_column(self):
        path = os.path.join(self.get_temp_dir(), "a.csv")
        header = [h for h in MARS_CSV_HEADER if h != "hat"]
        write_attribute_csv(path, header, [[1] * len(header)])
        with self.assertRaisesRegex(ValueError, r"lacks column\(s\) \['hat'\]"):
            MARS_SCHEMA.read_csv(path)

    def test_out_of_range_class(self):
        path = os.path.join(self.get_temp_dir(), "a.csv")
        row = [1, 1, 1, 0, 6] + [0] * 19  # pose 6 does not exist (0..5)
        write_attribute_csv(path, MARS_CSV_HEADER, [row])
        with self.assertRaisesRegex(ValueError, r"a.csv:2: attribute 'pose' has class 6"):
            MARS_SCHEMA.read_csv(path)

    def test_missing_file(self):
        with self.assertRaisesRegex(FileNotFoundError, "nowhere.csv"):
            MARS_SCHEMA.read_csv("/nowhere.csv")
