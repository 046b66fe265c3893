"""A PNG grid of tracklets (one row each), to look at a dataset before training on it."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from keras_asanet.data.frame_sampling import evenly_spaced
from keras_asanet.data.image_io import read_frame

# Colours of the synthetic label maps (background, body, top, bottom, hat, bag).
_LABEL_COLOURS = np.array(
    [(0, 0, 0), (230, 190, 160), (220, 40, 40), (40, 80, 220), (250, 220, 0), (30, 200, 90)],
    np.uint8,
)


def tracklet_contact_sheet(tracklets, path, frames_per_row=8, scale=2, with_masks=False):
    """Writes a PNG with one row of evenly spaced frames per tracklet.

    Args:
        tracklets: `Tracklet`s to show (one row each).
        path: output PNG path.
        frames_per_row: frames shown per tracklet.
        scale: integer upscaling of each frame (nearest neighbour).
        with_masks: append the synthetic label maps (`*_mask.png`) after the frames.

    Returns:
        The path written.
    """
    if not tracklets:
        raise ValueError("tracklet_contact_sheet needs at least one tracklet.")
    rows = []
    for t in tracklets:
        idx = evenly_spaced(t.num_frames, frames_per_row)
        frames = [read_frame(t.frames[i]) for i in idx]
        if with_masks:
            masks = []
            for i in idx:
                labels = np.asarray(Image.open(t.frames[i][:-4] + "_mask.png"))
                masks.append(_LABEL_COLOURS[np.clip(labels, 0, len(_LABEL_COLOURS) - 1)])
            frames += masks
        rows.append(np.concatenate(frames, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    sheet = np.concatenate(rows, axis=0)
    image = Image.fromarray(sheet).resize(
        (sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST
    )
    label_w = 150
    canvas = Image.new("RGB", (image.width + label_w, image.height), (255, 255, 255))
    canvas.paste(image, (label_w, 0))
    draw = ImageDraw.Draw(canvas)
    row_h = image.height // len(tracklets)
    for i, t in enumerate(tracklets):
        text = f"pid {t.original_pid} cam {t.camid + 1}"
        if t.attributes is not None:
            text += f"\npose {t.pose} motion {t.motion}"
        draw.text((4, i * row_h + 4), text, fill=(0, 0, 0))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path)
    return path
