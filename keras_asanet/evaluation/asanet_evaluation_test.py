import os
import tempfile

import keras
import numpy as np

from keras_asanet.data import Mars, get_dataset, make_synthetic_mars
from keras_asanet.evaluation import evaluate_model
from keras_asanet.evaluation.asanet_evaluation import evaluate_asanet, is_asanet
from keras_asanet.evaluation.mask_score import add_mask_score
from keras_asanet.models import ASANet
from keras_asanet.tests.fixtures import write_mars_fixture
from keras_asanet.tests.test_case import TestCase
from keras_asanet.training import callbacks

SETTINGS = dict(mode="sampled", seq_len=2, image_size=(32, 16), verbose=False, baseline=False)


def _switching_evaluation(model, dataset, **kwargs):
    """How training evaluated an ASANet before: switch it to dict outputs, then back."""
    model.set_inference_outputs("dict")
    try:
        return evaluate_model(
            model,
            dataset,
            feature_key="feature",
            id_relevant_key="re_attr_logits",
            id_irrelevant_key="ir_attr_logits",
            **kwargs,
        )
    finally:
        model.set_inference_outputs("feature")


class EvaluateASANetTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        root = os.path.join(cls._tmp.name, "synthetic")
        make_synthetic_mars(root, num_identities=8, image_size=(32, 16), frames_per_tracklet=(2, 3))
        cls.dataset = get_dataset("synthetic", root, attributes="auto")
        cls.model = ASANet(
            num_identities=cls.dataset.num_train_pids,
            backbone={"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 1, 1, 0)},
            attribute_branch_blocks=1,
            branch_dim=8,
        )
        cls.model.build_for_input((None, 2, 32, 16, 3))
        cls.clips = np.random.default_rng(0).uniform(0, 255, (2, 2, 32, 16, 3)).astype("float32")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_leaves_the_output_mode_and_predict_function_alone(self):
        model = self.model
        for mode in ("dict", "feature"):
            model.set_inference_outputs(mode)
            model.predict_on_batch(self.clips)
            predict_function = model.predict_function
            report = evaluate_asanet(model, self.dataset, **SETTINGS)
            self.assertIsNotNone(report.attributes)  # the heads were scored
            out = model.predict_on_batch(self.clips)
            self.assertEqual(isinstance(out, dict), mode == "dict", mode)
            self.assertIs(model.predict_function, predict_function, mode)
            self.assertEqual(isinstance(model(self.clips), dict), mode == "dict", mode)
        # The old way always left it on "feature", whatever it was before.
        model.set_inference_outputs("dict")
        _switching_evaluation(model, self.dataset, **SETTINGS)
        self.assertNotIsInstance(model(self.clips), dict)

    def test_same_report_as_switching_the_output_mode(self):
        model = self.model
        model.set_inference_outputs("feature")
        expected = _switching_evaluation(model, self.dataset, **SETTINGS)
        report = evaluate_asanet(model, self.dataset, **SETTINGS)
        self.assertGreater(report.ranking.num_valid_queries, 0)
        self.assertEqual(report.ranking.num_valid_queries, expected.ranking.num_valid_queries)
        self.assertAllClose(report.ranking.cmc, expected.ranking.cmc)
        self.assertAllClose(
            [report.ranking.mAP, report.ranking.mINP], [expected.ranking.mAP, expected.ranking.mINP]
        )
        self.assertEqual(report.attributes.to_dict(), expected.attributes.to_dict())
        self.assertEqual(report.settings, expected.settings)
        # The training callbacks' name is the same function.
        again = callbacks.evaluate_asanet(model, self.dataset, **SETTINGS)
        self.assertAllClose(again.ranking.cmc, expected.ranking.cmc)

    def test_add_mask_score_notes_what_it_could_not_score(self):
        self.assertTrue(is_asanet(self.model))
        plain = keras.Sequential([keras.Input((2, 32, 16, 3)), keras.layers.Flatten()])
        self.assertFalse(is_asanet(plain))
        report = evaluate_asanet(self.model, self.dataset, **SETTINGS)
        self.assertIsNone(add_mask_score(report, plain, self.dataset.query, seq_len=2))
        self.assertIn("mask score not computed: the model is not an ASANet.", report.notes)
        root = os.path.join(self.get_temp_dir(), "MARS")
        write_mars_fixture(root)  # frames without label maps
        no_masks = Mars(root, attributes=None).query
        self.assertIsNone(add_mask_score(report, self.model, no_masks, seq_len=2))
        self.assertIsNone(report.mask_score)
        self.assertTrue(report.notes[-1].startswith("mask score not computed: "), report.notes)

    def test_feature_parts_rank_each_part_of_the_test_feature(self):
        from keras_asanet.evaluation import extract_features, get_protocol

        report = evaluate_asanet(self.model, self.dataset, feature_parts=True, **SETTINGS)
        parts = report.feature_parts.parts
        self.assertEqual(
            parts, {"f_re_id": (0, 8), "f_id": (8, 16), "f_ir_id": (16, 24), "f_re_attr": (24, 56)}
        )
        self.assertEqual(self.model.final_dim, 56)
        self.assertIn("feature parts, each ranked alone: f_re_id [0:8] mAP", str(report))
        self.assertIn("f_re_attr", report.to_dict()["feature_parts"])
        # Oracle: the test feature extracted by itself, its attribute columns ranked alone.
        protocol = get_protocol(self.dataset, "usual")
        extracted = extract_features(
            self.model,
            protocol.tracklets,
            mode="sampled",
            seq_len=2,
            image_size=(32, 16),
            verbose=False,
            call_kwargs={"return_dict": True},
        )
        expected = protocol.evaluate(
            extracted.features["feature"][:, 24:56],
            extracted.pids,
            extracted.camids,
            metric="cosine",
        )
        got = report.feature_parts.results["f_re_attr"]
        self.assertAllClose(got.cmc, expected.cmc, atol=1e-6)
        self.assertAllClose(got.mAP, expected.mAP, atol=1e-6)
        self.assertIsNone(evaluate_asanet(self.model, self.dataset, **SETTINGS).feature_parts)

    def test_feature_parts_follow_the_fusion(self):
        from keras_asanet.evaluation import asanet_feature_parts

        small = dict(
            num_identities=4,
            backbone={"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 0, 0, 0)},
            attribute_branch_blocks=1,
            branch_dim=8,
        )
        model = ASANet(fusion="b", identity_branches=("ir", "re"), **small)
        self.assertEqual(
            asanet_feature_parts(model),
            {"f_re_id": (0, 8), "f_ir_id": (8, 16), "attribute_fc": (16, model.final_dim)},
        )
        model = ASANet(fuse_attribute_features=False, **small)
        parts = asanet_feature_parts(model)
        self.assertEqual(list(parts), ["f_re_id", "f_id", "f_ir_id"])
        self.assertEqual(parts["f_ir_id"][1], model.final_dim)
