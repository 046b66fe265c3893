"""The README says what the code does: every name it lists as importable imports from where it
says, its example imports run, the scripts it names exist, and the defaults it states are the
library's. Each check reads the README, so it fails when the two drift apart."""

import importlib
import inspect
import os
import re

from keras_asanet.tests.test_case import TestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as _f:
    README = _f.read()
# The README wraps lines anywhere; sentences are matched with the line breaks removed.
FLAT = " ".join(README.split())


def _listed_names(text=README):
    """`(owner, names)` per bullet "- `keras_asanet.x`: ..." of "Using the pieces": the
    plain identifiers in backticks (`Mars(root)` counts as `Mars`; dotted names such as
    `keras.utils.PyDataset`, paths and file suffixes are not the library's)."""
    start = text.index("## Using the pieces\n")
    end = text.find("\n## ", start + 1)
    bullets = re.split(r"\n- ", text[start:end])[1:]
    out = []
    for bullet in bullets:
        head = re.match(r"`(keras_asanet(?:\.\w+)+)`", bullet)
        if head is None:
            continue
        names = []
        for token in re.findall(r"`([^`]+)`", bullet[head.end() :], flags=re.S):
            match = re.fullmatch(r"([A-Za-z_]\w*)(\(.*\))?", token, flags=re.S)
            if match:
                names.append(match.group(1))
        out.append((head.group(1), names))
    return out


def _missing(text=README):
    """The listed names that do not import from where the README says (or are missing from
    the package's `__all__`)."""
    missing = []
    for owner, names in _listed_names(text):
        target = _resolve(owner)
        for name in names:
            exported = getattr(target, "__all__", None) if inspect.ismodule(target) else None
            if not hasattr(target, name) or (exported is not None and name not in exported):
                missing.append(f"{owner}.{name}")
    return missing


def _resolve(dotted):
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError:
        module, name = dotted.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)


class ReadmeTest(TestCase):
    def test_every_listed_name_imports_from_where_it_says(self):
        listed = dict(_listed_names())
        for package in ("data", "layers", "backbones", "losses", "evaluation", "training"):
            self.assertNotEmpty(listed[f"keras_asanet.{package}"], package)
        self.assertIn("from_preset", listed["keras_asanet.models.ASANet"])
        for name in ("PKSampler", "TrainClipDataset", "EvalClipDataset"):
            self.assertIn(name, listed["keras_asanet.data"])
        self.assertEqual(_missing(), [])

    def test_a_listed_name_that_drifted_is_caught(self):
        drifted = README.replace("`PKSampler`", "`PKSamplerV2`", 1)
        self.assertEqual(_missing(drifted), ["keras_asanet.data.PKSamplerV2"])

    def test_example_imports_run(self):
        blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
        self.assertNotEmpty(blocks)
        imports = [
            line
            for block in blocks
            for line in block.splitlines()
            if re.match(r"(from \S+ )?import ", line)
        ]
        self.assertIn("from keras_asanet.layers import ASRE", imports)
        for line in imports:
            exec(line, {})

    def test_the_scripts_it_names_exist(self):
        scripts = set(re.findall(r"scripts/\w+\.py", README))
        self.assertIn("scripts/fit.py", scripts)
        for path in scripts:
            self.assertTrue(os.path.isfile(os.path.join(ROOT, path)), path)

    def test_presets_and_where_pmi_is_on(self):
        from keras_asanet.models.asanet_presets import ASANET_PRESETS

        listed = re.search(r"from_preset\((.*?), \.\.\.\)", FLAT).group(1)
        self.assertEqual(set(re.findall(r'"(\w+)"', listed)), set(ASANET_PRESETS))
        sentence = re.search(r"PMI is on in (.*?) only: (.*?) are the paper's", FLAT)
        on = set(re.findall(r"`(\w+)`", sentence.group(1)))
        off = set(re.findall(r"`(\w+)`", sentence.group(2)))
        self.assertEqual(on, {k for k, v in ASANET_PRESETS.items() if v["config"]["pmi"]})
        self.assertEqual(off, {k for k, v in ASANET_PRESETS.items() if not v["config"]["pmi"]})

    def test_main_job_defaults(self):
        from keras_asanet.data.synthetic import SYNTHETIC_VERSION
        from keras_asanet.training.runner import DATASET_DEFAULTS, RunConfig

        synthetic = DATASET_DEFAULTS["synthetic"]
        m = re.search(r"\(version (\d+): ([\d,]+) identities.*?(\d+)x(\d+) frames", FLAT)
        self.assertEqual(int(m.group(1)), SYNTHETIC_VERSION)
        self.assertEqual(int(m.group(2).replace(",", "")), RunConfig.synthetic_identities)
        self.assertEqual((int(m.group(3)), int(m.group(4))), synthetic["image_size"])
        m = re.search(r"trains the `(\w+)` model for (\d+) epochs with colour jitter", FLAT)
        self.assertEqual((m.group(1), int(m.group(2))), (synthetic["preset"], synthetic["epochs"]))
        self.assertGreater(synthetic["color_jitter"], 0)
        m = re.search(
            r"weight decay ([\d.e-]+) on every weight but the attribute heads and ASRE's "
            r"query / key convolutions",
            FLAT,
        )
        self.assertEqual(float(m.group(1)), synthetic["weight_decay"])
        self.assertFalse(synthetic["attribute_head_decay"])
        self.assertFalse(synthetic["asre_attention_decay"])
        m = re.search(r"an attribute loss weight lambda_BCE of ([\d.]+)", FLAT)
        self.assertEqual(float(m.group(1)), synthetic["bce_weight"])
        m = re.search(r"ASRE's attention softmax over the (\w+) positions", FLAT)
        self.assertEqual(f"{m.group(1)}_positions", synthetic["asre_softmax_over"])
        m = re.search(r"attribute maps of (\d+) channels", FLAT)
        self.assertEqual(int(m.group(1)), synthetic["attribute_channels"])
        from keras_asanet.training.ablation import ABLATION_ROWS, row_config

        m = re.search(r"its configuration is the `([^`]+)` row", FLAT)
        self.assertIn(m.group(1), ABLATION_ROWS)
        # ... and that row trains what the main job trains.
        main = RunConfig()
        row = row_config(m.group(1), 0, main, "out", RunConfig.heldout_seed)
        for field in ("synthetic_identities", "weight_decay", "attribute_head_decay",
                      "color_jitter", "random_erasing", "asre_attention_decay", "epochs",
                      "preset", "image_size", "seq_len", "learning_rate", "flip_test",
                      "attribute_channels"):  # fmt: skip
            self.assertEqual(getattr(row, field), getattr(main, field), field)
        self.assertEqual(row.model_overrides.get("bce_weight"), main.bce_weight)
        self.assertEqual(row.model_overrides.get("asre_softmax_over"), main.asre_softmax_over)
        self.assertIn("feature averaged with its mirror's (the flip test)", FLAT)
        self.assertTrue(synthetic["flip_test"])
        self.assertIn("without random erasing", FLAT)
        self.assertEqual(synthetic["random_erasing"], 0)
        m = re.search(r"the synthetic dataset of \*\*another seed \((\d+)\)", FLAT)
        self.assertEqual(int(m.group(1)), RunConfig.heldout_seed)

    def test_paper_recipe_defaults(self):
        from keras_asanet.models import ASANet
        from keras_asanet.training.callbacks import PMIWeightSwitch
        from keras_asanet.training.optimizers import make_optimizer
        from keras_asanet.training.runner import DATASET_DEFAULTS, PAPER_DECAY_EPOCHS, RunConfig

        paper = DATASET_DEFAULTS["paper"]
        m = re.search(
            r"Defaults follow the paper: (\d+) identities x (\d+) tracklets, T = (\d+), "
            r"(\d+)x(\d+), (\d+) epochs, Adam ([\d.e-]+) with weight decay ([\d.e-]+) "
            r"\(x0\.1 at epochs (\d+), (\d+), (\d+)\), centres by SGD lr ([\d.]+), "
            r"lambda_PMI ([\d.]+) -> ([\d.]+) once the ID-irrelevant BCE is below ([\d.]+)\.",
            FLAT,
        )
        self.assertIsNotNone(m, "the paper-recipe sentence changed: update this test")
        g = m.groups()
        self.assertEqual(tuple(map(int, g[0:2])), tuple(RunConfig.batch))
        self.assertEqual(int(g[2]), paper["seq_len"])
        self.assertEqual(tuple(map(int, g[3:5])), paper["image_size"])
        self.assertEqual(int(g[5]), paper["epochs"])
        self.assertEqual(float(g[6]), paper["learning_rate"])
        self.assertEqual(float(g[7]), paper["weight_decay"])
        self.assertTrue(paper["attribute_head_decay"])
        self.assertEqual(tuple(map(int, g[8:11])), PAPER_DECAY_EPOCHS)
        optimizer = inspect.signature(make_optimizer).parameters
        self.assertEqual(float(g[11]), optimizer["center_learning_rate"].default)
        self.assertEqual(float(g[12]), inspect.signature(ASANet).parameters["pmi_weight"].default)
        switch = inspect.signature(PMIWeightSwitch).parameters
        self.assertEqual(float(g[13]), switch["new_weight"].default)
        self.assertEqual(float(g[14]), switch["threshold"].default)
        self.assertIn("--preset asanet_b ", FLAT)
        self.assertEqual(paper["preset"], "asanet_b")
