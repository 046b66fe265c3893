"""The training run behind `scripts/fit.py`: data, model, optimiser, callbacks, resume, report.

Kept importable (and free of argument parsing) so tests and notebooks drive the same code as
the command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from keras_asanet.cli import DEFAULT_METRIC

PAPER_EPOCHS = 700
PAPER_DECAY_EPOCHS = (100, 250, 350)


#: Defaults of a run per dataset: the paper's recipe on MARS / Duke (ImageNet-initialised
#: ResNet-50 on a GPU), and a CPU-sized one on the synthetic dataset, where `asanet_tiny`
#: starts from scratch (a larger learning rate; decays at 2/3 and 5/6 of the run).
DATASET_DEFAULTS = {
    "synthetic": {
        "preset": "asanet_tiny",
        # 24 epochs of 500 training identities: the 1,500 steps that 40 epochs of 300 took,
        # over more people (docs/results.md).
        "epochs": 24,
        "seq_len": 4,
        "image_size": (64, 32),
        "learning_rate": 3e-3,
        "decay_epochs": None,
        # Erasing up to 40 % of a 64x32 frame often wipes out the whole torso, the main cue a
        # from-scratch model has to learn first (docs/results.md measures it).
        "random_erasing": 0.0,
        # Camera sites differ most in light and white balance; a per-clip lighting jitter is
        # what lets the model meet the scenes of another seed (docs/results.md).
        "color_jitter": 0.4,
        # A from-scratch tiny model memorises its training identities: 20x the paper's
        # decay generalises better, and it must spare the attribute heads, which it would
        # otherwise drive to the majority class (docs/results.md).
        "weight_decay": 1e-2,
        "attribute_head_decay": False,
        # lambda_BCE 10x the swapped reading's 1.5 (on the joint mean of the attribute slots):
        # the heads learn past the majority class and mAP rises with them (docs/results.md).
        "bce_weight": 15.0,
        # Eq. 8's softmax over the identity positions: over the attribute positions (the
        # other reading) every mask is constant within a frame (docs/results.md).
        "asre_softmax_over": "identity_positions",
        # That decay also drives ASRE's query / key convolutions to zero, the attention turns
        # uniform and every mask is constant within a frame; spared, the masks stay on the
        # person for the same mAP (docs/results.md).
        "asre_attention_decay": False,
        "attribute_loss_weighting": "none",
        # Attribute maps as wide as the backbone map (C = 128 for asanet_tiny), twice the
        # paper's C/2: the ID-relevant head gains on the tuning seed (docs/results.md).
        "attribute_channels": 128,
        # Features averaged with those of the mirrored clips: +1.1 mAP on average over three
        # tuning-seed models (+1.9, +1.6, -0.3) for twice the extraction (docs/results.md).
        "flip_test": True,
        # Clips per extraction batch: 128 small clips run 1.1x (JAX) to 2.3x (torch) the
        # clips/s of 32, whose per-batch Python overhead dominates at 64x32
        # (docs/performance.md).
        "eval_batch_size": 128,
    },
    "paper": {
        "preset": "asanet_b",
        "epochs": PAPER_EPOCHS,
        "seq_len": 6,
        "image_size": (256, 128),
        "learning_rate": 3e-4,
        "decay_epochs": None,
        "random_erasing": 0.5,
        "color_jitter": 0.0,
        "weight_decay": 5e-4,
        "attribute_head_decay": True,
        "bce_weight": None,
        "asre_softmax_over": "attribute_positions",
        "asre_attention_decay": True,
        "attribute_loss_weighting": "none",
        # None: the paper's C/2.
        "attribute_channels": None,
        # The paper does not say that it flips at test time.
        "flip_test": False,
        # 32 clips of T = 6 at 256x128 keep dense extraction within a 12 GB card.
        "eval_batch_size": 32,
    },
}


def dataset_defaults(dataset):
    """The default settings of a run on `dataset` (a copy; see `DATASET_DEFAULTS`)."""
    return dict(DATASET_DEFAULTS["synthetic" if dataset == "synthetic" else "paper"])


#: `RunConfig.attribute_loss_weighting`: the attribute BCE as Eq. 18 ("none") or weighted
#: by each slot's positive ratio in the training split ("positive_ratio", DeepMAR's).
ATTRIBUTE_LOSS_WEIGHTINGS = ("none", "positive_ratio")


class UsageError(ValueError):
    """A bad setting of the run (reported by the CLI with exit code 2)."""


@dataclasses.dataclass
class RunConfig:
    """Settings of one training run (the CLI flags of `scripts/fit.py`)."""

    dataset: str = "synthetic"
    root: str | None = None
    preset: str = DATASET_DEFAULTS["synthetic"]["preset"]
    epochs: int = DATASET_DEFAULTS["synthetic"]["epochs"]
    batch: tuple = (8, 4)
    seq_len: int = DATASET_DEFAULTS["synthetic"]["seq_len"]
    image_size: tuple = DATASET_DEFAULTS["synthetic"]["image_size"]
    learning_rate: float = DATASET_DEFAULTS["synthetic"]["learning_rate"]
    weight_decay: float = DATASET_DEFAULTS["synthetic"]["weight_decay"]
    attribute_head_decay: bool = DATASET_DEFAULTS["synthetic"]["attribute_head_decay"]
    asre_attention_decay: bool = DATASET_DEFAULTS["synthetic"]["asre_attention_decay"]
    decay_epochs: tuple | None = None
    pmi: bool | None = None
    attributes: bool = True
    loss_weights: str = "swapped"
    # None: the `loss_weights` reading's lambda_BCE; a number overrides it.
    bce_weight: float | None = DATASET_DEFAULTS["synthetic"]["bce_weight"]
    asre_softmax_over: str = DATASET_DEFAULTS["synthetic"]["asre_softmax_over"]
    # "positive_ratio": the attribute BCE weighted by each slot's training positive ratio.
    attribute_loss_weighting: str = DATASET_DEFAULTS["synthetic"]["attribute_loss_weighting"]
    # Channels of the two attribute maps (`ASANet(attribute_channels=...)`); None: C/2.
    attribute_channels: int | None = DATASET_DEFAULTS["synthetic"]["attribute_channels"]
    identity_pooling: str | None = None
    model_overrides: dict = dataclasses.field(default_factory=dict)
    random_erasing: float = DATASET_DEFAULTS["synthetic"]["random_erasing"]
    heldout_seed: int | None = 1000
    color_jitter: float = DATASET_DEFAULTS["synthetic"]["color_jitter"]
    pretrained: str | None = None
    mixed_precision: str | None = None
    jit_compile: str = "auto"
    resume: bool = False
    resume_override: bool = False
    overwrite: bool = False
    check_frames: bool = False
    output: str = "runs/asanet"
    seed: int = 0
    eval_every: int = 0
    eval_mode: str = "dense"
    metric: str = DEFAULT_METRIC
    eval_batch_size: int = DATASET_DEFAULTS["synthetic"]["eval_batch_size"]
    flip_test: bool = DATASET_DEFAULTS["synthetic"]["flip_test"]
    eval_untrained: bool = False
    workers: int = 1
    # Measured: the torch main job trains in 272 s instead of 313 with it, same weights.
    prefetch: int = 1
    # glibc keeps what a step frees (keras_asanet.training.freed_memory): TensorFlow's main
    # job on an AVX2 EPYC fitted at 9-10 s an epoch instead of 16-17 s (docs/performance.md).
    retain_freed_memory: bool = True
    clip_dtype: str = "uint8"
    # 1,000 identities (500 for training): more people to generalise from in the same steps
    # (docs/results.md); judged on 300 held-out ones.
    synthetic_identities: int = 1000
    heldout_identities: int = 300
    dataset_seed: int = 0
    verbose: int = 1

    def validate(self):
        if self.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {self.epochs}.")
        if self.learning_rate <= 0:
            raise UsageError(f"--lr must be > 0, got {self.learning_rate}.")
        if min(self.batch) < 1:
            raise UsageError(f"--batch P K must be >= 1, got {self.batch}.")
        if self.seq_len < 1:
            raise UsageError(f"--seq-len must be >= 1, got {self.seq_len}.")
        if min(self.image_size) < 16:
            raise UsageError(f"--image-size must be at least 16x16, got {self.image_size}.")
        from keras_asanet.data.clip_checks import CLIP_DTYPES

        if self.clip_dtype not in CLIP_DTYPES:
            raise UsageError(
                f"Unknown --clip-dtype {self.clip_dtype!r}; expected one of {list(CLIP_DTYPES)}."
            )
        if self.dataset not in ("synthetic", "mars", "duke"):
            raise UsageError(
                f"Unknown --dataset {self.dataset!r}; expected synthetic, mars or duke."
            )
        if self.dataset != "synthetic" and not self.root:
            raise UsageError(f"--dataset {self.dataset} needs --root PATH (the dataset folder).")
        if self.root and self.dataset != "synthetic" and not os.path.isdir(self.root):
            raise UsageError(f"--root {self.root!r} does not exist or is not a folder.")
        if self.pretrained and not os.path.isfile(self.pretrained):
            raise UsageError(
                f"--pretrained {self.pretrained!r} does not exist; expected a local torchvision "
                "ResNet-50 .pth/.safetensors or a keras.applications ResNet50 .h5 file."
            )
        from keras_asanet.models.asanet import LOSS_WEIGHT_READINGS

        if self.loss_weights not in LOSS_WEIGHT_READINGS:
            raise UsageError(
                f"Unknown --loss-weights {self.loss_weights!r}; expected one of "
                f"{sorted(LOSS_WEIGHT_READINGS)}."
            )
        for flag, count in (
            ("--identities", self.synthetic_identities),
            ("--heldout-identities", self.heldout_identities),
        ):
            if self.dataset == "synthetic" and int(count) < 8:
                raise UsageError(f"{flag} must be >= 8 (half of them train), got {count}.")
        if self.heldout_seed is not None and self.heldout_seed == self.dataset_seed:
            raise UsageError(
                f"--heldout-seed {self.heldout_seed} equals --dataset-seed: the unseen-scenes "
                "evaluation must use a dataset the run does not train on."
            )
        if self.bce_weight is not None and not (
            isinstance(self.bce_weight, (int, float)) and 0 <= self.bce_weight < float("inf")
        ):
            raise UsageError(f"--bce-weight must be a finite number >= 0, got {self.bce_weight}.")
        from keras_asanet.layers.asre import SOFTMAX_AXES

        if self.asre_softmax_over not in SOFTMAX_AXES:
            raise UsageError(
                f"Unknown --asre-softmax-over {self.asre_softmax_over!r}; expected one of "
                f"{list(SOFTMAX_AXES)}."
            )
        from keras_asanet.models.asanet import check_attribute_channels

        try:
            check_attribute_channels(self.attribute_channels)
        except ValueError:
            raise UsageError(
                "--attribute-channels must be a positive multiple of 4 (or 'paper' for C/2), "
                f"got {self.attribute_channels!r}."
            ) from None
        if self.attribute_loss_weighting not in ATTRIBUTE_LOSS_WEIGHTINGS:
            raise UsageError(
                f"Unknown --attribute-loss-weighting {self.attribute_loss_weighting!r}; "
                f"expected one of {list(ATTRIBUTE_LOSS_WEIGHTINGS)}."
            )
        if not isinstance(self.flip_test, bool):
            raise UsageError(f"flip_test must be True or False, got {self.flip_test!r}.")
        if self.metric not in ("cosine", "euclidean"):
            raise UsageError(f"Unknown --metric {self.metric!r}; expected cosine or euclidean.")
        if self.identity_pooling not in (None, "avg", "gem"):
            raise UsageError(
                f"Unknown --identity-pooling {self.identity_pooling!r}; expected avg or gem."
            )
        if self.mixed_precision not in (None, "mixed_float16", "mixed_bfloat16"):
            raise UsageError(f"Unknown mixed precision policy {self.mixed_precision!r}.")
        from keras_asanet.models.asanet_presets import ASANET_PRESETS

        if self.preset not in ASANET_PRESETS:
            raise UsageError(
                f"Unknown --preset {self.preset!r}; expected one of {sorted(ASANET_PRESETS)}."
            )

    def scaled_decay_epochs(self):
        """The x0.1 epochs: given ones, else the paper's (100, 250, 350 of 700) scaled to a
        shorter run, or 2/3 and 5/6 of the run on the synthetic dataset (the paper's scaled
        to a short run would decay far too early for a network trained from scratch)."""
        if self.decay_epochs is not None:
            return tuple(int(e) for e in self.decay_epochs)
        if self.dataset == "synthetic":
            return tuple(max(1, round(self.epochs * f)) for f in (2 / 3, 5 / 6))
        scale = min(1.0, self.epochs / PAPER_EPOCHS)
        return tuple(max(1, round(e * scale)) for e in PAPER_DECAY_EPOCHS)

    def to_dict(self):
        return dataclasses.asdict(self)


#: The settings a resumed run must share with the run that wrote its checkpoint: each
#: changes what is trained. `epochs` is not among them (a run may be extended); the
#: output, display, worker and evaluation settings neither.
RESUME_KEYS = (
    "dataset",
    "dataset_seed",
    "synthetic_identities",
    "preset",
    "seq_len",
    "image_size",
    "batch",
    "learning_rate",
    "weight_decay",
    "attribute_head_decay",
    "asre_attention_decay",
    "decay_epochs",
    "pmi",
    "attributes",
    "loss_weights",
    "bce_weight",
    "asre_softmax_over",
    "attribute_loss_weighting",
    "attribute_channels",
    "identity_pooling",
    "model_overrides",
    "random_erasing",
    "color_jitter",
    "seed",
    "mixed_precision",
)


#: What a setting was in runs whose saved `run_config` predates it: such a run resumes (and
#: is compared) with the value it trained with, not with today's default.
LEGACY_SETTINGS = {
    "bce_weight": None,
    "asre_softmax_over": "attribute_positions",
    "asre_attention_decay": True,
    "attribute_loss_weighting": "none",
    "attribute_channels": None,
    "flip_test": False,
}


def _plain(value):
    """A JSON round trip, so tuples and lists (a saved config's) compare equal."""
    return json.loads(json.dumps(value, default=float))


def resume_differences(saved, config):
    """`[(key, saved value, new value)]` of the `RESUME_KEYS` on which `config` differs
    from a checkpoint's saved `run_config` (keys the saved config lacks are not compared).

    `decay_epochs` is compared as the schedule each run actually uses: left unset it is
    scaled from `epochs`, so extending a run moves its decays unless they are given.
    """
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    differences = []
    saved = {**LEGACY_SETTINGS, **saved}
    for key in RESUME_KEYS:
        if key not in saved:
            continue
        old, new = saved[key], getattr(config, key)
        if key == "decay_epochs":
            known = {k: v for k, v in saved.items() if k in fields}
            try:
                old = RunConfig(**known).scaled_decay_epochs()
            except (TypeError, ValueError):
                pass
            new = config.scaled_decay_epochs()
        if _plain(old) != _plain(new):
            differences.append((key, _plain(old), _plain(new)))
    return differences


def check_resume_settings(config, ckpt_dir, log=print):
    """Refuses to resume with settings that differ from the checkpoint's on `RESUME_KEYS`
    (a run that silently changes its recipe halfway gives numbers of neither), unless
    `config.resume_override`, which logs each difference."""
    from keras_asanet.training.checkpoint import latest_state

    state, path = latest_state(ckpt_dir)
    if state is None:
        return []  # restore_latest reports the missing checkpoint
    saved = state.get("run_config")
    if not isinstance(saved, dict) or not saved:
        log(f"warning: {path} holds no run settings; the resumed settings are not compared.")
        return []
    differences = resume_differences(saved, config)
    if not differences:
        return []
    lines = [f"  {key}: saved {old!r}, new {new!r}" for key, old, new in differences]
    if config.decay_epochs is None and any(key == "decay_epochs" for key, *_ in differences):
        saved_schedule = next(old for key, old, _ in differences if key == "decay_epochs")
        lines.append(
            "  (unset decay epochs follow --epochs; pass --decay-epochs "
            f"{' '.join(map(str, saved_schedule))} to keep the saved schedule)"
        )
    if config.resume_override:
        log(
            "warning: --resume-override: resuming with settings that differ from the "
            f"checkpoint's ({path}):\n" + "\n".join(lines)
        )
        return differences
    raise UsageError(
        f"--resume: these settings differ from the checkpoint's ({path}):\n"
        + "\n".join(lines)
        + "\nDrop those flags to continue with the saved settings (scripts/fit.py --resume "
        "takes every setting you do not type from the checkpoint), or pass --resume-override "
        "(resume_override=True) to continue with the new ones anyway."
    )


#: Fields a resumed run always takes from its caller, never from the checkpoint.
CALLER_FIELDS = (
    "output",
    "resume",
    "resume_override",
    "overwrite",
    "check_frames",
    "verbose",
    "workers",
    "prefetch",
    "retain_freed_memory",
)


def with_saved_settings(config, explicit=()):
    """`config` with every field not in `explicit` taken from the run_config of the newest
    checkpoint in `config.output` (`CALLER_FIELDS` excepted).

    Why: a plain `scripts/fit.py --resume` must continue the saved run even where a default
    has changed since; only the settings the user typed are "new" and compared by
    `check_resume_settings`. Unset `decay_epochs` keeps the saved run's schedule, so
    extending `epochs` does not move its decays.

    Args:
        config: the `RunConfig` of the command line.
        explicit: names of the fields the user set.
    """
    from keras_asanet.training.checkpoint import latest_state

    state, _ = latest_state(os.path.join(config.output, "checkpoints"))
    saved = (state or {}).get("run_config")
    if not isinstance(saved, dict) or not saved:
        return config
    saved = {**LEGACY_SETTINGS, **saved}
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    known = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in fields}
    taken = {k: v for k, v in known.items() if k not in explicit and k not in CALLER_FIELDS}
    resumed = dataclasses.replace(config, **taken)
    if "decay_epochs" not in explicit and known.get("decay_epochs") is None:
        try:
            resumed.decay_epochs = RunConfig(**known).scaled_decay_epochs()
        except (TypeError, ValueError):
            pass
    return resumed


def check_dataset_frames(dataset, workers=1, log=print):
    """`--check-frames`: decodes every frame of the train, query and gallery tracklets once
    and reports all bad files before training starts (a `FrameError` naming the first 10 and
    their count), instead of the first one when an epoch reaches it."""
    from keras_asanet.data.image_io import check_frames

    splits = (dataset.train, dataset.query, dataset.gallery)
    paths = [frame for split in splits for t in split for frame in t.frames]
    start = time.time()
    count = check_frames(paths, workers=workers)
    log(f"--check-frames: all {count} frame files decode ({time.time() - start:.0f} s).")
    return count


def load_dataset(config):
    """The dataset of a run (builds the synthetic one once, cached at its root)."""
    from keras_asanet.data import default_synthetic_root, get_dataset

    if config.dataset == "synthetic":
        # The dataset has its own seed (not the training seed), and each parameter set its
        # own cache folder, so `--seed 1` trains again on the same data.
        root = config.root or default_synthetic_root(
            config.synthetic_identities, config.image_size, config.dataset_seed
        )
        _build_synthetic(config, root, config.dataset_seed, config.synthetic_identities)
        return get_dataset("synthetic", root, attributes="auto" if config.attributes else None)
    return get_dataset(config.dataset, config.root)


def _build_synthetic(config, root, seed, identities):
    """Builds (or reuses) the synthetic dataset of `seed` with `identities` at `root`, at the
    run's frame size."""
    from keras_asanet.data import make_synthetic_mars

    make_synthetic_mars(
        root,
        num_identities=int(identities),
        image_size=tuple(config.image_size),
        seed=seed,
        verbose=bool(config.verbose),
    )


def build_model(config, dataset):
    """The ASANet of a run, with `--no-attributes` and `--no-pmi` applied."""
    from keras_asanet.models import ASANet

    overrides = {"loss_weights": config.loss_weights}
    if config.bce_weight is not None:
        overrides["bce_weight"] = float(config.bce_weight)
    overrides["asre_softmax_over"] = config.asre_softmax_over
    if config.attribute_channels is not None:
        overrides["attribute_channels"] = int(config.attribute_channels)
    if config.identity_pooling is not None:
        overrides["identity_pooling"] = config.identity_pooling
    if config.mixed_precision:
        # The policy goes to the model (and from it to every sublayer); the global policy is
        # left as the user had it.
        overrides["dtype"] = config.mixed_precision
    if not config.attributes:
        # The baseline the paper compares against (Table VII): no attribute supervision, and
        # so no PMI loss, which relies on the ID-irrelevant attribute features.
        overrides.update(attribute_supervision=False, pmi=False)
    elif config.pmi is not None:
        overrides["pmi"] = bool(config.pmi)
    if config.attributes and config.attribute_loss_weighting == "positive_ratio":
        rows = [t.attributes for t in dataset.train if t.attributes is not None]
        if not rows or dataset.attribute_schema is None:
            raise UsageError(
                "--attribute-loss-weighting positive_ratio needs annotated training "
                f"tracklets; the training split of {config.dataset!r} has none."
            )
        overrides["attribute_positive_ratios"] = list(
            dataset.attribute_schema.positive_ratios(rows)
        )
    overrides.update(config.model_overrides)
    model = ASANet.from_preset(
        config.preset,
        num_identities=dataset.num_train_pids,
        attribute_schema=dataset.attribute_schema,
        pretrained_backbone=config.pretrained,
        **overrides,
    )
    model.build_for_input((None, config.seq_len, *config.image_size, 3))
    return model


def train(config, log=print):
    """Runs training and the final evaluation; returns the results dict.

    The run owns `config.output` while it lives (`keras_asanet.training.run_folder`): a
    lock refuses a second writer, and a fresh run into a folder holding an earlier run is
    refused unless `config.resume` or `config.overwrite`.

    Raises:
        UsageError: bad settings (the CLI turns it into exit code 2).
        keras_asanet.training.checkpoint.CheckpointError: `resume` without a usable checkpoint.
    """
    from keras_asanet.training.run_folder import claim_run_folder

    config.validate()
    if config.retain_freed_memory:
        from keras_asanet.training.freed_memory import retain_freed_memory

        retain_freed_memory()
    with claim_run_folder(
        config.output, resume=config.resume, overwrite=config.overwrite, log=log
    ) as folder:
        return _train(config, folder, log)


def jit_compile_setting(value):
    """`model.compile(jit_compile=...)` for a `--jit-compile` value (`auto`, `true`, `false`).

    `auto` is Keras' choice: XLA on JAX, eager on torch, and on TensorFlow XLA only where a
    GPU is visible (Keras turns it off on CPU-only machines, so the README's CPU job runs a
    `tf.function` graph: `--jit-compile auto` and `false` print the same digits there). On
    TensorFlow without a GPU neither path wins everywhere (docs/performance.md): at the
    benchmark's 128x64, 4x2 clips the graph step measured 1.19x the reference against 0.95x
    with XLA, while the main job (64x32, 8x4 clips) once trained in 136 s with XLA against
    157 s as a graph, before TensorFlow's fused batch norm made the graph step 1.18x faster.
    """
    if value not in ("auto", "true", "false"):
        raise UsageError(f"--jit-compile must be auto, true or false, got {value!r}.")
    from keras_asanet.layers.data_format import channels_last_computes_channels_first

    if value == "true" and channels_last_computes_channels_first():
        # torch.compile's inductor fails on the channels-first compute of the layers on
        # torch-CPU (and took 154 s for a first step, 33 s for each later one, before it).
        raise UsageError(
            "--jit-compile true means torch.compile on the torch backend, which does not "
            "compile this model on a CPU (docs/performance.md); use --jit-compile auto or "
            "false (eager), or the jax / tensorflow backend for XLA."
        )
    return "auto" if value == "auto" else value == "true"


def _train(config, folder, log):
    import keras

    from keras_asanet.data.clip_augmentation import ClipAugmentation
    from keras_asanet.data.pipelines import TrainClipDataset
    from keras_asanet.evaluation.asanet_evaluation import evaluate_asanet
    from keras_asanet.models.saving import save_model
    from keras_asanet.training import callbacks as cb
    from keras_asanet.training.checkpoint import restore_latest
    from keras_asanet.training.optimizers import (
        ASRE_ATTENTION,
        ATTRIBUTE_HEADS,
        decay_exclusions,
        make_optimizer,
        step_decay_schedule,
    )

    ckpt_dir = os.path.join(config.output, "checkpoints")
    if config.resume and not os.path.isdir(ckpt_dir):
        from keras_asanet.training.checkpoint import CheckpointError

        raise CheckpointError(
            f"--resume: {ckpt_dir!r} does not exist; nothing to resume in {config.output!r}."
        )
    if config.resume:
        check_resume_settings(config, ckpt_dir, log=log)
    keras.utils.set_random_seed(config.seed)

    dataset = load_dataset(config)
    if config.verbose:
        log(dataset.summary())
    if config.check_frames:
        check_dataset_frames(dataset, workers=config.workers, log=log)
    p, k = config.batch
    try:
        train_data = TrainClipDataset(
            dataset.train,
            dataset.attribute_schema if config.attributes else None,
            num_identities=p,
            num_instances=k,
            seq_len=config.seq_len,
            image_size=tuple(config.image_size),
            augmentation=ClipAugmentation.for_image_size(
                *config.image_size,
                erasing_probability=config.random_erasing,
                color_jitter=config.color_jitter,
            ),
            seed=config.seed,
            workers=config.workers,
            prefetch=config.prefetch,
            num_classes=dataset.num_train_pids,
            clip_dtype=config.clip_dtype,
        )
    except ValueError as err:
        raise UsageError(f"Training data (--batch {p} {k}): {err}") from None
    model = build_model(config, dataset)
    steps = len(train_data)
    schedule = step_decay_schedule(config.learning_rate, config.scaled_decay_epochs(), steps)
    model.compile(
        optimizer=make_optimizer(
            learning_rate=schedule,
            weight_decay=config.weight_decay,
            center_loss_weight=model.center_loss_weight,
            # Off: the attribute heads' few weights, or ASRE's query / key convolutions,
            # escape the L2 term (docs/results.md).
            weight_decay_exclude=decay_exclusions(
                None if config.attribute_head_decay else ATTRIBUTE_HEADS,
                None if config.asre_attention_decay else ASRE_ATTENTION,
            ),
        ),
        jit_compile=jit_compile_setting(config.jit_compile),
    )
    model.optimizer.build(model.trainable_variables)

    history, initial_epoch, results = {}, 0, {}
    eval_kwargs = _eval_kwargs(config, verbose=bool(config.verbose))
    if config.resume:
        state, path = restore_latest(ckpt_dir, model, log=log)
        initial_epoch = int(state["epoch"])
        train_data.set_state(state["data_state"])
        history = state.get("history", {})
        results = state.get("results", {})
        log(f"Resuming from {path} (epoch {initial_epoch} of {config.epochs}).")
    elif config.eval_untrained:
        untrained = evaluate_asanet(model, dataset, **eval_kwargs)
        results["untrained"] = _summary(untrained)
        log("Untrained model: " + _one_line(results["untrained"]))

    # Everything the run needs is ready: only now may --overwrite remove the earlier run.
    folder.clear_previous(log)
    guard = cb.NaNGuard()
    evaluation = cb.ReIDEvaluation(
        dataset,
        every=config.eval_every or config.epochs,
        final_epoch=config.epochs - 1,
        **eval_kwargs,
    )
    checkpoint = cb.EpochCheckpoint(
        ckpt_dir,
        train_data,
        run_config=config.to_dict(),
        history=history,
    )
    callbacks = [cb.LearningRateLogger(), guard]
    if model.pmi:
        callbacks.append(cb.PMIWeightSwitch())
    callbacks += [evaluation, checkpoint]
    start = time.time()
    if initial_epoch < config.epochs:
        try:
            model.fit(
                train_data,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                verbose=config.verbose,
                # The PK plan is already random and seeded; Keras' own shuffle would reorder
                # the batches with Python's global RNG, and a resumed run would not replay them.
                shuffle=False,
            )
        except Exception as err:
            # TensorFlow's fit reports a pipeline error as its own type, with a traceback in
            # the message: the bad frame is named in one line instead.
            if train_data.frame_error is not None and err is not train_data.frame_error:
                raise train_data.frame_error from None
            raise
    elapsed = time.time() - start
    if guard.stopped:
        raise FloatingPointError(guard.message)
    # The trained model is written before any final evaluation, so a failing evaluation can
    # never lose the training.
    model_path = os.path.join(config.output, "model.keras")
    save_model(model, model_path)  # atomic: an interrupted save keeps no truncated file
    report = evaluation.last_report or evaluate_asanet(model, dataset, **eval_kwargs)
    if config.dataset == "synthetic":
        try:
            report.mask_score = _mask_score(model, config, dataset)
        except ValueError as err:  # e.g. a dataset folder without label maps
            report.notes.append(f"mask score not computed: {err}")
    results.update(
        {
            "final": _summary(report),
            "report": report.to_dict(),
            "train_seconds": elapsed,
            "epochs": config.epochs,
            "config": config.to_dict(),
            "backend": keras.backend.backend(),
        }
    )
    if report.baseline is not None:
        results["final"]["baseline_mAP"] = float(report.baseline.mAP)
        results["final"]["baseline_rank1"] = float(report.baseline.rank(1))
    if report.mask_score is not None:
        results["mask_score"] = report.mask_score.to_dict()
    unseen = None
    if config.dataset == "synthetic" and config.heldout_seed is not None:
        unseen, heldout = _evaluate_unseen(model, config, eval_kwargs)
        results["unseen"] = _unseen_summary(
            unseen, heldout, config.heldout_seed, config.heldout_identities
        )
    with open(os.path.join(config.output, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    _plots(config.output, checkpoint.history, report)
    log(str(report))
    log("Final: " + _one_line(results["final"]))
    if report.baseline is not None:
        log(report.baseline_line())
    if report.mask_score is not None:
        log(report.mask_score.one_line())
    if "untrained" in results:
        log("Untrained: " + _one_line(results["untrained"]))
    if unseen is not None:
        log(
            f"Unseen identities and scenes (synthetic seed {config.heldout_seed}, never "
            "trained on): " + _one_line(results["unseen"])
        )
        if unseen.baseline is not None:
            log("  " + unseen.baseline_line())
        groups = results["unseen"].get("attribute_groups")
        if groups:
            floor = results["unseen"]["majority_groups"]
            log(
                "  attribute accuracy "
                + ", ".join(
                    f"{g} {100 * v:.1f}% (majority class {100 * floor[g]:.1f}%)"
                    for g, v in groups.items()
                )
            )
        if unseen.mask_score is not None:
            log("  " + unseen.mask_score.one_line())
    log(f"Wrote {model_path}, results.json, curves.png and cmc.png to {config.output}")
    return results


def _eval_kwargs(config, verbose):
    """The `evaluate_asanet` settings of a run: its clip length, frame size and distance."""
    return {
        "mode": config.eval_mode,
        "metric": config.metric,
        "seq_len": config.seq_len,
        "image_size": tuple(config.image_size),
        "batch_size": config.eval_batch_size,
        "flip": bool(config.flip_test),
        "verbose": verbose,
    }


def rescore(config, log=print):
    """Evaluates a finished run's `model.keras` again with `config.metric` (and its other
    evaluation settings), on its own test split and on the held-out synthetic seed, and
    rewrites the rankings in its `results.json`; what does not depend on the distance (the
    attribute accuracy, the mask scores, the training history) is kept, unless the held-out
    set itself changed (another `heldout_identities`): then it is scored anew. This is how
    `scripts/ablation.py` scores finished runs with another distance without training them
    again.

    Returns:
        The updated results dict.
    """
    from keras_asanet.evaluation.asanet_evaluation import evaluate_asanet

    path, results, model = _finished_run(config)
    eval_kwargs = _eval_kwargs(config, verbose=False)
    report = evaluate_asanet(model, load_dataset(config), **eval_kwargs)
    results["final"].update(_summary(report))
    # The mask scores do not depend on the distance: kept, not computed again.
    results["report"] = {**report.to_dict(), "mask_score": results["report"].get("mask_score")}
    if config.dataset == "synthetic" and config.heldout_seed is not None:
        before = results.get("unseen", {})
        same_set = scored_heldout_set(results) == (
            config.heldout_seed,
            int(config.heldout_identities),
        )
        # Mask scores do not depend on the distance, but they do on the held-out set.
        unseen, heldout = _evaluate_unseen(model, config, eval_kwargs, masks=not same_set)
        kept_masks = before.get("mask_score") if same_set else None
        results["unseen"] = _unseen_summary(
            unseen, heldout, config.heldout_seed, config.heldout_identities
        )
        if kept_masks is not None:
            results["unseen"]["mask_score"] = kept_masks
    results["config"]["metric"] = config.metric
    results["config"]["flip_test"] = config.flip_test
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=float)
    log(
        f"Re-scored {config.output} with the {config.metric} distance: "
        + _one_line(results["final"])
    )
    return results


def _finished_run(config):
    """`(results.json path, its dict, the loaded model.keras)` of the run in `config.output`."""
    from keras_asanet.models.saving import load_model

    path = os.path.join(config.output, "results.json")
    with open(path) as f:
        results = json.load(f)
    return path, results, load_model(os.path.join(config.output, "model.keras"))


def scored_heldout_set(results):
    """`(seed, identities)` of the held-out synthetic set a finished run's `results.json`
    was scored on (`(None, None)` if none). Runs scored before the held-out size was recorded
    used a set as large as their training set."""
    unseen = results.get("unseen", {})
    trained = results.get("config", {}).get("synthetic_identities")
    return unseen.get("dataset_seed"), unseen.get("identities", trained)


def rescore_masks(config, log=print):
    """Scores a finished synthetic run's ASRE masks again (`mask_score` with today's
    defaults, e.g. its cell layout) on its own test split and on the held-out seed, and
    rewrites them in its `results.json`; everything else is kept. This is how
    `scripts/ablation.py` brings the mask scores of finished runs up to date without
    training them again.

    Returns:
        The updated results dict.
    """
    path, results, model = _finished_run(config)
    if not (model.uses_re_asre or model.uses_ir_asre):
        return results

    def score(dataset):
        try:
            return _mask_score(model, config, dataset).to_dict()
        except ValueError:  # e.g. frames too small for the person to fill a cell
            return None

    own = score(load_dataset(config))
    results["mask_score"] = own
    results.setdefault("report", {})["mask_score"] = own
    if "unseen" in results and config.heldout_seed is not None:
        results["unseen"]["mask_score"] = score(_heldout_dataset(config))
        log(f"Re-scored the masks of {config.output} on seed {config.heldout_seed}.")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=float)
    return results


def _mask_score(model, config, dataset):
    """Where the ASRE masks point, against the synthetic frames' ground-truth person masks:
    up to 64 test tracklets spread evenly over query + gallery (deterministic)."""
    from keras_asanet.evaluation import mask_score

    return mask_score(
        model,
        [*dataset.query, *dataset.gallery],
        seq_len=config.seq_len,
        image_size=tuple(config.image_size),
        max_tracklets=64,
    )


def _heldout_dataset(config):
    """The synthetic dataset of `config.heldout_seed` (built once, then read from disk)."""
    from keras_asanet.data import default_synthetic_root, get_dataset

    if config.root:  # beside the training data the user placed, not in the home cache
        root = f"{os.path.abspath(config.root).rstrip(os.sep)}-heldout-seed{config.heldout_seed}"
    else:
        root = default_synthetic_root(
            config.heldout_identities, config.image_size, config.heldout_seed
        )
    _build_synthetic(config, root, config.heldout_seed, config.heldout_identities)
    return get_dataset("synthetic", root)


def _evaluate_unseen(model, config, eval_kwargs, masks=True):
    """The model on the test split of the synthetic dataset of `config.heldout_seed`: new
    identities in new scenes, the honest measure of what it learned (`masks`: with the ASRE
    mask score). Its size is `config.heldout_identities`, not the training set's: runs that
    train on more identities are judged on the same held-out set."""
    from keras_asanet.evaluation.asanet_evaluation import evaluate_asanet

    heldout = _heldout_dataset(config)
    report = evaluate_asanet(model, heldout, **{**eval_kwargs, "verbose": False})
    if masks and (model.uses_re_asre or model.uses_ir_asre):
        try:
            report.mask_score = _mask_score(model, config, heldout)
        except ValueError as err:  # e.g. frames too small for the person to fill a cell
            report.notes.append(f"mask score not computed: {err}")
    return report, heldout


def _unseen_summary(report, heldout, seed, identities):
    """The results.json entry of the unseen-scenes evaluation."""
    from keras_asanet.evaluation.attribute_accuracy import majority_class_accuracy

    out = _summary(report)
    out["dataset_seed"] = int(seed)
    out["identities"] = int(identities)
    if report.baseline is not None:
        out["baseline_mAP"] = float(report.baseline.mAP)
        out["baseline_rank1"] = float(report.baseline.rank(1))
    if report.attributes is not None:
        out["attribute_groups"] = dict(report.attributes.group_mean)
    if heldout.attribute_schema is not None:
        try:
            floor = majority_class_accuracy(
                heldout.attribute_schema, heldout.train, [*heldout.query, *heldout.gallery]
            )
            out["majority_groups"] = dict(floor.group_mean)
        except ValueError:  # no annotated tracklets: nothing to compare with
            pass
    if report.mask_score is not None:
        out["mask_score"] = report.mask_score.to_dict()
    return out


def _summary(report):
    r = report.ranking
    out = {
        "rank1": float(r.rank(1)),
        "rank5": float(r.rank(5)),
        "rank10": float(r.rank(10)),
        "mAP": float(r.mAP),
        "mINP": float(r.mINP),
        "num_valid_queries": int(r.num_valid_queries),
        "metric": report.settings.get("metric"),
        "flip": bool(report.settings.get("flip", False)),
    }
    if report.attributes is not None:
        out["attribute_accuracy"] = float(report.attributes.mean_accuracy)
    return out


def _one_line(s):
    text = (
        f"rank-1 {100 * s['rank1']:.1f}  rank-5 {100 * s['rank5']:.1f}  "
        f"rank-10 {100 * s['rank10']:.1f}  mAP {100 * s['mAP']:.1f}  mINP {100 * s['mINP']:.1f}"
    )
    if "attribute_accuracy" in s:
        text += f"  attribute accuracy {100 * s['attribute_accuracy']:.1f}"
    return text


def _plots(output, history, report):
    """curves.png and cmc.png (`keras_asanet.visualization`); curves.png is written even
    when no epoch was recorded, as the run's last line says."""
    from keras_asanet.visualization import plot_cmc, plot_training_curves

    plot_training_curves(history, os.path.join(output, "curves.png"))
    plot_cmc(report.ranking.cmc, report.ranking.mAP, os.path.join(output, "cmc.png"))
