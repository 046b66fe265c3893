"""Writers of tiny datasets in exactly the published MARS and DukeMTMC-VideoReID layouts.

They are written here independently of the library's own synthetic generator so that reader
tests compare against the real layouts, not against the library's idea of them.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.io
from PIL import Image


def write_jpeg(path, size=(16, 8), colour=None, seed=0):
    """A small real JPEG file (random pixels, or a flat colour)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    h, w = size
    if colour is None:
        pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        pixels = np.full((h, w, 3), colour, np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def mars_frame_name(pid, cam, tracklet, frame):
    pid_text = "00-1" if pid == -1 else f"{pid:04d}"
    return f"{pid_text}C{cam}T{tracklet:04d}F{frame:03d}.jpg"


# Default MARS fixture: (split, pid, camera, tracklet number, frames).
MARS_TRACKS = (
    ("train", 7, 1, 1, 3),
    ("train", 7, 2, 1, 2),
    ("train", 3, 1, 1, 4),
    ("train", 3, 3, 2, 1),
    ("train", 12, 2, 1, 2),
    ("test", 5, 1, 1, 3),  # query
    ("test", 5, 2, 1, 2),
    ("test", 5, 1, 2, 2),  # same camera as its query
    ("test", 9, 3, 1, 2),  # query
    ("test", 9, 1, 1, 3),
    ("test", 0, 2, 1, 2),  # distractor
    ("test", -1, 1, 1, 2),  # junk
    ("test", 11, 2, 1, 1),  # query with no cross-camera match
)
MARS_QUERY_ROWS = (1, 4, 8)  # 1-based rows of the test tracks


def write_mars_fixture(root, tracks=MARS_TRACKS, query_rows=MARS_QUERY_ROWS, image_size=(16, 8)):
    """Writes `bbox_train/`, `bbox_test/` and `info/` like the published MARS.

    Returns:
        dict split -> list of frame-name lists (one list per track, in row order).
    """
    names = {"train": [], "test": []}
    rows = {"train": [], "test": []}
    per_track = {"train": [], "test": []}
    for i, (split, pid, cam, tracklet, frames) in enumerate(tracks):
        start = len(names[split]) + 1
        track_names = []
        for f in range(1, frames + 1):
            name = mars_frame_name(pid, cam, tracklet, f)
            folder = "00-1" if pid == -1 else f"{pid:04d}"
            write_jpeg(
                os.path.join(root, f"bbox_{split}", folder, name), image_size, seed=i * 100 + f
            )
            names[split].append(name)
            track_names.append(name)
        rows[split].append([start, len(names[split]), pid, cam])
        per_track[split].append(track_names)
    os.makedirs(os.path.join(root, "info"), exist_ok=True)
    for split in ("train", "test"):
        with open(os.path.join(root, "info", f"{split}_name.txt"), "w") as f:
            f.write("\n".join(names[split]) + "\n")
        scipy.io.savemat(
            os.path.join(root, "info", f"tracks_{split}_info.mat"),
            {f"track_{split}_info": np.asarray(rows[split], np.float64)},
        )
    scipy.io.savemat(
        os.path.join(root, "info", "query_IDX.mat"),
        {"query_IDX": np.asarray([list(query_rows)], np.float64)},
    )
    return per_track


# Default Duke fixture: (split, pid, camera, tracklet folder number, frame numbers).
DUKE_TRACKS = (
    ("train", 2, 6, 1, (99, 100, 101)),
    ("train", 2, 1, 2, (12, 10, 11)),  # written out of order on purpose
    ("train", 40, 3, 7, (5,)),
    ("query", 8, 2, 11, (3, 4)),
    ("gallery", 8, 5, 12, (8, 9, 10)),
    ("gallery", 8, 2, 13, (20, 21)),
    ("gallery", 17, 4, 14, (1, 2)),
)


def duke_frame_name(pid, cam, frame, x=30823):
    return f"{pid:04d}_C{cam}_F{frame:04d}_X{x}.jpg"


def write_duke_fixture(root, tracks=DUKE_TRACKS, image_size=(16, 8)):
    """Writes `{train,query,gallery}/<pid>/<tracklet>/<pid>_C<cam>_F<frame>_X<n>.jpg`."""
    for i, (split, pid, cam, tracklet, frames) in enumerate(tracks):
        folder = os.path.join(root, split, f"{pid:04d}", f"{tracklet:04d}")
        for f in frames:
            write_jpeg(os.path.join(folder, duke_frame_name(pid, cam, f)), image_size, seed=i + f)
    for split in ("train", "query", "gallery"):
        os.makedirs(os.path.join(root, split), exist_ok=True)


def write_attribute_csv(path, header, rows):
    """Writes an annotation CSV with the given header and integer rows."""
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(str(v) for v in row) + "\n")


MARS_CSV_HEADER = (
    "person_id,camera_id,tracklets_id,motion,pose,occlusion,cut-out,multi-person,"
    "background-dominant,target-change,target-miss,wrong-target,top color,bottom color,age,"
    "top length,bottom length,shoulder bag,backpack,hat,hand bag,hair,gender,bottom type"
).split(",")
DUKE_CSV_HEADER = (
    "person_id,camera_id,tracklets_id,motion,pose,occlusion,cut-out,muti-person,"
    "background-dominant,target-change,target-miss,wrong-target,backpack,bag,handbag,boots,"
    "gender,hat,shoes,top,bottom color,top color"
).split(",")
