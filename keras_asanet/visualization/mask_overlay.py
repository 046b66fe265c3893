"""Where ASA-Net's attention goes: the ASRE masks of both branches over the frames of one
tracklet (paper Fig. 8), with the ground-truth person outlined when the dataset has it.

ASRE (Eq. 8-10) computes one mask per frame on the grid of the last feature map for each of
the two attribute branches: the ID-relevant one (clothing, bag, hat, ...) and the
ID-irrelevant one (pose and motion). The masks come from
`keras_asanet.evaluation.mask_score.iter_model_masks`, the same call that `mask_score` scores,
and the person outline from the label maps the synthetic dataset writes beside its frames.
"""

from __future__ import annotations

import numpy as np

from keras_asanet.visualization._figures import as_image, hide_ticks, new_figure, save_figure

#: Row titles of the two masks, in the order they are drawn.
MASK_ROWS = {"re_mask": "ID-relevant mask", "ir_mask": "ID-irrelevant mask"}


def normalise_mask(mask):
    """Min-max scales a tracklet's masks of one branch jointly to [0, 1] (all frames share
    one scale, so brighter means more attention across the whole tracklet). A constant mask
    maps to zeros.

    Args:
        mask: `(T, h, w)` array.

    Returns:
        `(T, h, w)` float64 in [0, 1].
    """
    mask = np.asarray(mask, np.float64)
    low, high = float(mask.min()), float(mask.max())
    if high - low <= 1e-12:
        return np.zeros_like(mask)
    return (mask - low) / (high - low)


def _resize_nearest(region, size):
    """`(H', W')` bool -> `(H, W)` bool by nearest neighbour (label maps are full size)."""
    h, w = size
    rows = np.minimum((np.arange(h) + 0.5) * region.shape[0] / h, region.shape[0] - 1)
    cols = np.minimum((np.arange(w) + 0.5) * region.shape[1] / w, region.shape[1] - 1)
    return region[rows.astype(int)][:, cols.astype(int)]


def mask_extent(grid, frame_size, cell_layout="centred"):
    """The matplotlib `extent` that puts each cell of an `(h, w)` map over its window of a
    `(H, W)` frame (`keras_asanet.evaluation.mask_score.cell_windows`), in `imshow`'s pixel
    coordinates (pixel `x` centred on `x`).

    Args:
        grid: `(h, w)` of the map.
        frame_size: `(H, W)` of the frame.
        cell_layout: `"centred"` (default; ASA-Net's feature maps, cell `(i, j)` centred on
            pixel `(s * i, s * j)`) or `"tiled"` (the frame cut into equal tiles).

    Returns:
        `(left, right, bottom, top)`.

    Example:

    >>> mask_extent((4, 2), (64, 32))  # a 4x2 mask on a 64x32 frame, stride 16
    (-8.0, 24.0, 56.0, -8.0)
    """
    from keras_asanet.evaluation.mask_score import cell_windows

    (h, w), (height, width) = grid, frame_size
    rows_lo, rows_hi = cell_windows(height, h, cell_layout)
    cols_lo, cols_hi = cell_windows(width, w, cell_layout)
    edges = (cols_lo[0], cols_hi[-1], rows_hi[-1], rows_lo[0])
    return tuple(float(edge) - 0.5 for edge in edges)


def plot_mask_overlay(
    frames,
    masks,
    person_masks=None,
    title=None,
    alpha=0.5,
    cmap="jet",
    normalise=True,
    path=None,
    cell_layout="centred",
):
    """Frames of a tracklet in the first row, each ASRE mask over them in the rows below.

    Args:
        frames: `(T, H, W, 3)` RGB frames (uint8, or float in [0, 255]) as the model saw them.
        masks: dict of row key -> `(T, h, w)` maps on the grid of a feature map, e.g.
            `"re_mask"` and `"ir_mask"` (rows titled by `MASK_ROWS`; any other key is its
            own title, such as `"Grad-CAM"`), drawn in the dict's order. Each row is scaled
            to [0, 1] over the whole tracklet (`normalise_mask`, unless `normalise=False`)
            and drawn bilinearly upsampled over the frames, each cell over its window
            (`cell_layout`).
        person_masks: optional `(T, H', W')` bool ground-truth person (e.g. `label_map > 0`
            of the synthetic dataset), outlined in white on every panel (resized to the
            frames' size by nearest neighbour).
        title: figure title.
        alpha: opacity of the masks.
        cmap: matplotlib colour map of the masks.
        normalise: scale each row with `normalise_mask`; `False` draws maps already in
            [0, 1] as they are (Grad-CAM, whose zero means "no evidence").
        path: where to write the figure as PNG, or `None`.
        cell_layout: where a map's cells lie on the frame (`mask_extent`): `"centred"`
            (default) for maps on ASA-Net's feature grid, whose cell `(i, j)` is centred on
            pixel `(s * i, s * j)`; `"tiled"` stretches the map over the frame. A map as large
            as the frame is drawn pixel on pixel either way.

    Returns:
        A `matplotlib.figure.Figure` with `(1 + number of masks) x T` axes in row order; each
        mask axis holds two images (the frame, then the scaled mask) and, with
        `person_masks`, one contour set.

    Example:

    >>> fig = plot_mask_overlay(frames, {"re_mask": re, "ir_mask": ir})  # doctest: +SKIP
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {frames.shape}.")
    num_frames, height, width = frames.shape[:3]
    rows = [key for key, value in masks.items() if value is not None]
    if not rows:
        raise ValueError("masks is empty: give at least one (T, h, w) map.")
    scaled = {}
    for key in rows:
        mask = np.asarray(masks[key])
        if mask.ndim != 3 or mask.shape[0] != num_frames:
            raise ValueError(
                f"masks[{key!r}] must be ({num_frames}, h, w) (one map per frame), got "
                f"shape {mask.shape}."
            )
        scaled[key] = normalise_mask(mask) if normalise else np.clip(mask, 0.0, 1.0)
    person = None
    if person_masks is not None:
        person = np.asarray(person_masks, bool)
        if person.ndim != 3 or person.shape[0] != num_frames:
            raise ValueError(
                f"person_masks must be ({num_frames}, H, W), got shape {person.shape}."
            )
        person = np.stack([_resize_nearest(p, (height, width)) for p in person])

    panel = 1.1 * max(width / height, 0.25)
    fig = new_figure(1.2 + panel * num_frames, 0.4 + 1.25 * (1 + len(rows)))
    axes = np.asarray(fig.subplots(1 + len(rows), num_frames, squeeze=False))
    frame_extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    for t in range(num_frames):
        image = as_image(frames[t])
        axes[0, t].imshow(image, interpolation="nearest")
        axes[0, t].set_title(f"frame {t + 1}", fontsize=7)
        for r, key in enumerate(rows, start=1):
            ax = axes[r, t]
            ax.imshow(image, interpolation="nearest")
            ax.imshow(
                scaled[key][t],
                cmap=cmap,
                alpha=alpha,
                vmin=0.0,
                vmax=1.0,
                extent=mask_extent(scaled[key].shape[1:], (height, width), cell_layout),
                interpolation="bilinear",
            )
            ax.set_xlim(frame_extent[0], frame_extent[1])
            ax.set_ylim(frame_extent[2], frame_extent[3])
        for r in range(1 + len(rows)):
            if person is not None and person[t].any() and not person[t].all():
                axes[r, t].contour(
                    person[t].astype(float), levels=[0.5], colors="white", linewidths=0.8
                )
            hide_ticks(axes[r, t])
    axes[0, 0].set_ylabel("frames", fontsize=7)
    for r, key in enumerate(rows, start=1):
        axes[r, 0].set_ylabel(MASK_ROWS.get(key, key), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def ground_truth_person(tracklet, paths):
    """`(T, H, W)` bool person masks (`label map > 0`) of the frames `paths` of `tracklet`,
    or `None` when the dataset wrote no label maps (MARS, Duke)."""
    from keras_asanet.evaluation.mask_score import has_masks, read_label_map

    if not has_masks(tracklet):
        return None
    return np.stack([read_label_map(p) > 0 for p in paths])


def _title(tracklet, person):
    title = f"pid {tracklet.original_pid}, camera {tracklet.camid + 1}"
    return title if person is not None else title + " (no ground-truth mask)"


def plot_model_masks(model, tracklet, seq_len=6, image_size=None, alpha=0.5, path=None):
    """`plot_mask_overlay` of an ASA-Net's own masks on `seq_len` evenly spaced frames of one
    tracklet, with the ground-truth person outlined when label maps exist beside the frames
    (the synthetic dataset writes them; MARS and Duke have none).

    Args:
        model: an `ASANet` with ASRE (anything `mask_score` accepts).
        tracklet: a `Tracklet`.
        seq_len: frames shown (one clip, evenly spaced over the tracklet).
        image_size: `(height, width)` the frames are resized to; by default the model's input
            size if fixed, else 256 x 128 (`resolve_image_size`). Pass the training size.
        alpha: opacity of the masks.
        path: where to write the figure as PNG, or `None`.

    Returns:
        The `matplotlib.figure.Figure`, titled with the tracklet's identity and camera.

    Example:

    >>> fig = plot_model_masks(model, dataset.query[0], seq_len=4, image_size=(64, 32),
    ...                        path="masks.png")  # doctest: +SKIP
    """
    return plot_model_masks_of(model, [tracklet], seq_len, image_size, alpha, [path])[0]


def plot_model_masks_of(model, tracklets, seq_len=6, image_size=None, alpha=0.5, paths=None):
    """`plot_model_masks` for several tracklets with one model call (a batch of clips).

    Args:
        model, seq_len, image_size, alpha: as `plot_model_masks`.
        tracklets: the `Tracklet`s.
        paths: one PNG path (or `None`) per tracklet, or `None` to write nothing.

    Returns:
        A list of figures, one per tracklet.
    """
    from keras_asanet.evaluation.feature_extraction import resolve_image_size
    from keras_asanet.evaluation.mask_score import iter_model_masks

    tracklets = list(tracklets)
    paths = [None] * len(tracklets) if paths is None else list(paths)
    image_size = resolve_image_size(model, image_size)
    figures = []
    batches = iter_model_masks(
        model, tracklets, seq_len=int(seq_len), image_size=image_size, batch_size=len(tracklets)
    )
    for frame_paths, clips, masks in batches:
        for b, tracklet in enumerate(tracklets[len(figures) : len(figures) + len(clips)]):
            person = ground_truth_person(tracklet, frame_paths[b])
            figures.append(
                plot_mask_overlay(
                    clips[b],
                    {key: masks[key][b] for key in MASK_ROWS if key in masks},
                    person_masks=person,
                    title=_title(tracklet, person),
                    alpha=alpha,
                    path=paths[len(figures)],
                )
            )
    return figures
