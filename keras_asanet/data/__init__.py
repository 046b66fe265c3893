"""Datasets (MARS, DukeMTMC-VideoReID, synthetic), attributes, sampling and pipelines."""

from keras_asanet.data.attributes import (
    DUKE_SCHEMA,
    MARS_SCHEMA,
    Attribute,
    AttributeSchema,
    builtin_attribute_csv,
)
from keras_asanet.data.duke_video_reid import DukeVideoReID
from keras_asanet.data.mars import Mars
from keras_asanet.data.pipelines import EvalClipDataset, TrainClipDataset
from keras_asanet.data.samplers import PKSampler
from keras_asanet.data.synthetic import MASK_LABELS, default_synthetic_root, make_synthetic_mars
from keras_asanet.data.tracklet import Tracklet
from keras_asanet.data.video_reid_dataset import VideoReIDDataset

DATASETS = {"mars": Mars, "duke": DukeVideoReID, "synthetic": Mars}


def get_dataset(name, root, **kwargs):
    """Reads a dataset by name, so a command line or a config can choose the reader.

    Args:
        name: `"mars"`, `"duke"` or `"synthetic"` (a MARS-layout folder made by
            `make_synthetic_mars`), any case; the readers are in `DATASETS`.
        root: the dataset folder, in that dataset's real layout.
        **kwargs: passed to the reader (e.g. `attributes=`, `verbose=`).

    Returns:
        A `VideoReIDDataset` (`Mars` or `DukeVideoReID`).

    Raises:
        ValueError: an unknown name.
        FileNotFoundError: `root` is missing or not in the expected layout (the reader says
            which file it expected).

    Example:

    >>> mars = get_dataset("mars", "/data/MARS")  # doctest: +SKIP
    >>> mars.num_train_pids                        # doctest: +SKIP
    625
    """
    key = str(name).lower()
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {sorted(DATASETS)}.")
    return DATASETS[key](root, **kwargs)


__all__ = [
    "Attribute",
    "AttributeSchema",
    "DATASETS",
    "DUKE_SCHEMA",
    "DukeVideoReID",
    "EvalClipDataset",
    "MARS_SCHEMA",
    "MASK_LABELS",
    "Mars",
    "PKSampler",
    "Tracklet",
    "TrainClipDataset",
    "VideoReIDDataset",
    "builtin_attribute_csv",
    "get_dataset",
    "default_synthetic_root",
    "make_synthetic_mars",
]
