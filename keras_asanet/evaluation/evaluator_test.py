import dataclasses
import json
import types

import numpy as np

from keras_asanet.data.attributes import AttributeSchema
from keras_asanet.evaluation.evaluator import evaluate_model
from keras_asanet.evaluation.feature_extraction import extract_features
from keras_asanet.evaluation.feature_extraction_test import H, W, numpy_model, write_tracklets
from keras_asanet.evaluation.mask_score import MaskScore
from keras_asanet.evaluation.ranking import evaluate_distance_matrix, evaluate_ranking
from keras_asanet.evaluation.raw_pixels import raw_pixel_baseline
from keras_asanet.evaluation.reranking import DEFAULT_LAMBDA, k_reciprocal_distance
from keras_asanet.tests.test_case import TestCase

SCHEMA = AttributeSchema.for_dataset("mars")


def _row(motion, pose):
    row = {a.name: 0 for a in SCHEMA.attributes}
    row.update(motion=motion, pose=pose)
    return row


class _Fixture(TestCase):
    """Two queries and four gallery tracklets, and a numpy model with attribute logits."""

    def setUp(self):
        super().setUp()
        raw = write_tracklets(self.get_temp_dir(), [3, 5, 2, 4, 6, 1])
        layout = [  # (pid, camid, annotation): 2 queries, 4 gallery tracklets
            (1, 0, _row(0, 1)),
            (2, 0, None),
            (1, 1, _row(1, 1)),
            (2, 1, _row(0, 4)),
            (0, 0, None),
            (2, 2, _row(3, 0)),
        ]
        tracklets = [
            dataclasses.replace(
                t,
                pid=p,
                camid=c,
                original_pid=p,
                attributes=a,
                quality=None if a is None else {"occlusion": 1},
            )
            for t, (p, c, a) in zip(raw, layout)
        ]
        self.dataset = types.SimpleNamespace(
            name="mars",
            train=[],
            query=tracklets[:2],
            gallery=tracklets[2:],
            attribute_schema=SCHEMA,
        )
        self.tracklets = tracklets

    def model(self, clips):
        f = numpy_model(clips)
        ir = np.zeros((len(clips), SCHEMA.id_irrelevant_dim), np.float32)
        ir[:, SCHEMA.slot_slice("motion").start] = 1.0  # always predicts motion 0 (walking)
        ir[:, SCHEMA.slot_slice("pose").start + 1] = 1.0  # always pose 1
        re = -np.ones((len(clips), SCHEMA.id_relevant_dim), np.float32)  # all binary = 0
        re[:, 0] = 1.0  # top colour 0 (its first slot); bottom colour / age arg-max -> 0
        return {"feature": f, "re_attr_logits": re, "ir_attr_logits": ir}


class EvaluateModelTest(_Fixture):
    def test_report(self):
        report = evaluate_model(
            self.model,
            self.dataset,
            setup="mixing",
            mode="dense",
            seq_len=2,
            batch_size=3,
            image_size=(H, W),
            camera_pairs=True,
            verbose=False,
        )
        feats, pids, camids = extract_features(
            numpy_model, self.tracklets, "dense", seq_len=2, image_size=(H, W), verbose=False
        )
        # Ranked by cosine distance unless told otherwise (the measured best for ASA-Net).
        split = (feats[:2], feats, pids[:2], pids, camids[:2], camids)
        expected = evaluate_ranking(*split, metric="cosine")
        self.assertEqual(report.settings["metric"], "cosine")
        self.assertEqual(report.ranking.name, "mars/mixing")
        self.assertEqual(report.ranking.num_queries, 2)
        self.assertEqual(report.ranking.num_gallery, 6)
        self.assertAlmostEqual(report.ranking.mAP, expected.mAP, places=6)
        np.testing.assert_allclose(report.ranking.cmc, expected.cmc)
        # 4 annotated tracklets, motions [0, 1, 0, 3], poses [1, 1, 4, 0]; predicted 0 and 1.
        acc = report.attributes
        self.assertEqual(acc.num_tracklets, 4)
        self.assertEqual(acc.per_attribute["motion"], 0.5)
        self.assertEqual(acc.per_attribute["pose"], 0.5)
        self.assertEqual(acc.per_attribute["gender"], 1.0)
        self.assertEqual(acc.per_attribute["top_color"], 1.0)
        b = report.query_breakdown.to_dict()
        self.assertEqual(b["quality"]["occlusion=1"]["num_queries"], 1)
        self.assertEqual(b["pose"]["lateral_frontal"]["num_queries"], 1)
        self.assertIsNotNone(report.camera_pairs)
        d = json.loads(json.dumps(report.to_dict()))
        self.assertEqual(d["settings"]["setup"], "mixing")
        self.assertEqual(d["settings"]["feature_dim"], 4)
        self.assertEqual(d["settings"]["image_size"], [H, W])
        self.assertEqual(d["ranking"]["num_queries"], 2)
        text = str(report)
        self.assertIn("mars/mixing: 2 queries vs 6 gallery tracklets", text)
        self.assertIn("Attribute accuracy", text)

    def test_cross_dataset_and_plain_features(self):
        report = evaluate_model(
            self.model,
            self.dataset,
            trained_on="duke",
            seq_len=2,
            image_size=(H, W),
            breakdown=False,
            verbose=False,
        )
        self.assertEqual(report.ranking.name, "duke->mars/usual")
        self.assertEqual(list(report.attributes.group_mean), ["id_irrelevant"])
        self.assertIn("another schema", " ".join(report.notes))
        report = evaluate_model(
            numpy_model, self.dataset, seq_len=2, image_size=(H, W), verbose=False
        )
        self.assertIsNone(report.attributes)
        self.assertIn("no attribute logits", " ".join(report.notes))

    def test_missing_feature_key(self):
        with self.assertRaisesRegex(ValueError, "without feature key 'embedding'"):
            evaluate_model(
                self.model,
                self.dataset,
                seq_len=2,
                image_size=(H, W),
                feature_key="embedding",
                verbose=False,
            )


class BaselineInReportTest(_Fixture):
    def test_baseline_beside_the_model(self):
        report = evaluate_model(
            self.model,
            self.dataset,
            setup="mixing",
            mode="sampled",
            seq_len=2,
            image_size=(H, W),
            baseline_image_size=(4, 3),
            verbose=False,
        )
        expected = raw_pixel_baseline(
            self.dataset, protocol="mixing", image_size=(4, 3), mode="sampled", seq_len=2
        )
        self.assertEqual(report.baseline.name, "mars/mixing")
        self.assertAlmostEqual(report.baseline.mAP, expected.mAP, places=7)
        np.testing.assert_allclose(report.baseline.cmc, expected.cmc)
        b, m = report.baseline, report.ranking
        line = (
            f"raw-pixels baseline: mAP {100 * b.mAP:.1f} rank-1 {100 * b.rank(1):.1f} "
            f"(model: mAP {100 * m.mAP:.1f} rank-1 {100 * m.rank(1):.1f}, {m.mAP / b.mAP:.1f}x)"
        )
        self.assertEqual(report.baseline_line(), line)
        self.assertIn(line, str(report))
        d = json.loads(json.dumps(report.to_dict()))
        self.assertAlmostEqual(d["baseline"]["mAP"], expected.mAP)
        self.assertIsNone(d["mask_score"])
        self.assertEqual(d["settings"]["baseline_image_size"], [4, 3])
        # Cached: the same protocol and settings reuse the result; other settings do not.
        again = evaluate_model(
            self.model,
            self.dataset,
            setup="mixing",
            mode="sampled",
            seq_len=2,
            image_size=(H, W),
            baseline_image_size=(4, 3),
            verbose=False,
        )
        self.assertIs(again.baseline, report.baseline)
        other = evaluate_model(
            self.model,
            self.dataset,
            setup="mixing",
            mode="dense",
            seq_len=2,
            image_size=(H, W),
            baseline_image_size=(4, 3),
            verbose=False,
        )
        self.assertIsNot(other.baseline, report.baseline)

    def test_no_baseline_and_a_mask_score(self):
        report = evaluate_model(
            numpy_model, self.dataset, seq_len=2, image_size=(H, W), baseline=False, verbose=False
        )
        self.assertIsNone(report.baseline)
        self.assertNotIn("raw-pixels baseline", str(report))
        self.assertIsNone(report.to_dict()["baseline"])
        report.mask_score = MaskScore(
            re_iou=0.5,
            ir_iou=0.25,
            centre_iou=0.4,
            best_iou=0.8,
            regions={"top": {"re_iou": None, "ir_iou": None, "centre_iou": None,
                             "best_iou": None, "num_frames": 0}},
            num_frames=12,
            num_frames_skipped=0,
            num_tracklets=3,
            grid=(4, 2),
            top_k=0.2,
            image_size=(64, 32),
        )  # fmt: skip
        text = str(report)
        self.assertIn("re-mask 0.500  ir-mask 0.250  centre prior 0.400", text)
        self.assertEqual(json.loads(json.dumps(report.to_dict()))["mask_score"]["re_iou"], 0.5)


class RerankInReportTest(_Fixture):
    def test_model_and_baseline_are_re_ranked_alike(self):
        settings = {"k1": 3, "k2": 2}
        kwargs = dict(
            setup="mixing",
            mode="dense",
            seq_len=2,
            image_size=(H, W),
            baseline_image_size=(4, 3),
            verbose=False,
        )
        report = evaluate_model(self.model, self.dataset, rerank=settings, **kwargs)
        feats, pids, camids = extract_features(
            numpy_model, self.tracklets, "dense", seq_len=2, image_size=(H, W), verbose=False
        )
        dist = k_reciprocal_distance(feats[:2], feats, k1=3, k2=2, metric="cosine")
        expected = evaluate_distance_matrix(dist, pids[:2], pids, camids[:2], camids)
        self.assertAlmostEqual(report.ranking.mAP, expected.mAP, places=6)
        np.testing.assert_allclose(report.ranking.query_first_rank, expected.query_first_rank)
        self.assertEqual(report.ranking.metric, "cosine, k-reciprocal re-ranked")
        self.assertEqual(
            report.settings["rerank"], {"k1": 3, "k2": 2, "lambda_value": DEFAULT_LAMBDA}
        )
        self.assertIn("k-reciprocal re-ranking (k1 3, k2 2, lambda 0.3)", str(report))
        baseline = raw_pixel_baseline(
            self.dataset, protocol="mixing", image_size=(4, 3), mode="dense", seq_len=2,
            metric="cosine", rerank=settings,
        )  # fmt: skip
        self.assertAlmostEqual(report.baseline.mAP, baseline.mAP, places=7)
        self.assertEqual(report.baseline.metric, "cosine, k-reciprocal re-ranked")
        json.dumps(report.to_dict())  # the settings stay JSON
        # Without re-ranking: the plain ranking and another (cached) baseline.
        plain = evaluate_model(self.model, self.dataset, **kwargs)
        self.assertIs(plain.settings["rerank"], False)
        self.assertEqual(plain.ranking.metric, "cosine")
        self.assertIsNot(plain.baseline, report.baseline)
        # The defaults need more than 20 test tracklets: a clear error, not a silent k1.
        with self.assertRaisesRegex(ValueError, "k1=20 needs more than k1 items"):
            evaluate_model(self.model, self.dataset, rerank=True, **kwargs)
        with self.assertRaisesRegex(ValueError, "Unknown re-ranking setting"):
            evaluate_model(self.model, self.dataset, rerank={"k": 3}, **kwargs)
