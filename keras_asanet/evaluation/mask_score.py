"""Do ASA-Net's ASRE masks point at the person? Scored against ground-truth label maps.

The synthetic dataset writes a label map `<frame>_mask.png` beside every frame (values in
`keras_asanet.data.synthetic.MASK_LABELS`; the person is `label > 0`). `mask_score` runs the
model with `return_masks=True`, keeps the top-k% positions of each frame's ASRE mask and
measures their IoU with the ground-truth person (and with the clothing / hat / bag regions),
beside the same IoU for a fixed centre prior: a mask that does not beat "the middle of the box"
has not learned where the person is.

How the ground truth meets the mask grid. The model sees each frame resized to `image_size` and
its masks are on the `(h, w)` grid of its feature maps. Where on the frame a cell lies is the
network's geometry, not an equal tiling: in a ResNet padded like torchvision's (every `k x k`
convolution or pooling padded by `k // 2`), the feature at `(i, j)` of a stride-`s` map is
centred on pixel `(s * i, s * j)`, so the first row and column sit on the frame's top and left
edges and the grid is half a cell up and left of the tiles `[s * i, s * (i + 1))`
(`cell_layout="centred"`, the default; `AGWResNetTest` checks the centres from the receptive
fields of the library's backbone, found by changing one input row or column at a time). The
full-resolution label map is area-averaged into the `s x s` window of each cell
(`cell_fractions`: the exact fraction of the window covered by the region; the part of a window
outside the frame counts as not covered) and a cell counts as the region when at least half of
it is (`threshold=0.5`). The centre prior is placed on the same cell centres. Frames whose
region covers no cell are left out of that region's mean (and counted). `cell_layout="tiled"`
is the equal tiling every score used before 2026-12-07 (docs/results.md, "Where a mask cell
lies on the frame").

The pure pieces (`cell_fractions`, `centre_prior`, `top_k_positions`, `top_k_iou`) are
numpy-only; `mask_score` imports Keras when called.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from PIL import Image

from keras_asanet.data.frame_sampling import evenly_spaced
from keras_asanet.data.image_io import read_frame
from keras_asanet.data.synthetic import MASK_LABELS, mask_path

#: Regions scored beside the whole person: name -> label values (`MASK_LABELS`).
DEFAULT_REGIONS = {
    "top": (MASK_LABELS["top"],),
    "bottom": (MASK_LABELS["bottom"],),
    "hat": (MASK_LABELS["hat"],),
    "bag": (MASK_LABELS["bag"],),
}
MASK_KEYS = ("re_mask", "ir_mask")


# ------------------------------------------------------------------------ pure numpy parts


#: Where the cells of a mask grid lie on the frame (see `cell_windows`).
CELL_LAYOUTS = ("centred", "tiled")


def _check_layout(layout):
    if layout not in CELL_LAYOUTS:
        raise ValueError(f"cell layout must be one of {CELL_LAYOUTS}, got {layout!r}.")


def cell_windows(size, cells, layout="tiled"):
    """The window of each cell along one axis of a frame, in pixel coordinates (pixel `x`
    covers `[x, x + 1)`).

    Args:
        size: the frame's length along the axis, in pixels.
        cells: the grid's length along it; the stride is `s = size / cells` (the network's
            output stride when `size` is a multiple of it, as for 64x32 or 256x128 frames).
        layout: `"tiled"`: cell `i` is `[s * i, s * (i + 1))`, the frame cut into equal
            tiles. `"centred"`: cell `i` is the `s`-wide window centred on pixel `s * i`
            (centre `s * i + 0.5`), where the feature `i` of a ResNet padded like torchvision's
            is centred; the first window starts half a cell before the frame and the last
            ends about half a cell before the frame does.

    Returns:
        `(lo, hi)`, two `(cells,)` float64 arrays.

    Example:

    >>> lo, hi = cell_windows(64, 4, "centred")  # the rows of a 4x2 grid on a 64x32 frame
    >>> lo.tolist(), hi.tolist()
    ([-7.5, 8.5, 24.5, 40.5], [8.5, 24.5, 40.5, 56.5])
    """
    _check_layout(layout)
    stride = float(size) / int(cells)
    lo = np.arange(int(cells)) * stride
    if layout == "centred":
        lo = lo + 0.5 - stride / 2.0
    return lo, lo + stride


def _area_weights(size, cells, layout="tiled"):
    """`(cells, size)`: the share of cell `i`'s window covered by pixel `j` (a row sums to 1
    when the window lies inside the frame, less when part of it lies outside)."""
    lo_edges, hi_edges = cell_windows(size, cells, layout)
    pixel = np.arange(size)
    lo = np.maximum(lo_edges[:, None], pixel[None, :])
    hi = np.minimum(hi_edges[:, None], pixel[None, :] + 1)
    return np.clip(hi - lo, 0.0, None) / (float(size) / int(cells))


def cell_fractions(region, grid, layout="tiled"):
    """Area-averages binary maps into a coarser grid: the fraction of each cell covered.

    Args:
        region: `(..., H, W)` bool or 0/1 maps at full resolution.
        grid: `(h, w)` cells; any size (cells need not align with pixels: a pixel split
            between two cells counts in both by the share of it each holds).
        layout: where the cells lie, `"tiled"` (default) or `"centred"` (`cell_windows`);
            with `"centred"`, the part of a window outside the frame counts as not covered.

    Returns:
        `(..., h, w)` float64 in [0, 1].
    """
    region = np.asarray(region, np.float64)
    rows = _area_weights(region.shape[-2], int(grid[0]), layout)
    cols = _area_weights(region.shape[-1], int(grid[1]), layout)
    return np.einsum("ih,...hw,jw->...ij", rows, region, cols)


def centre_prior(grid, layout="tiled", image_size=None):
    """A fixed centre-weighted map: an ellipse-shaped Gaussian over the cells' centres,
    peaking at the frame's centre (standard deviations a quarter of its height and width).

    Args:
        grid: `(h, w)`.
        layout: where the cells lie on the frame (`cell_windows`): `"tiled"` (default) or
            `"centred"`, which needs `image_size` (the cells' centres then depend on the
            frame's pixels).
        image_size: `(H, W)` of the frames, for `layout="centred"`.

    Returns:
        `(h, w)` float64; only its order matters for `top_k_positions`.
    """
    _check_layout(layout)
    h, w = int(grid[0]), int(grid[1])
    if layout == "tiled":
        y = (np.arange(h) + 0.5) / h - 0.5
        x = (np.arange(w) + 0.5) / w - 0.5
    else:
        if image_size is None:
            raise ValueError('centre_prior(layout="centred") needs the frames\' image_size.')
        height, width = int(image_size[0]), int(image_size[1])
        y = np.mean(cell_windows(height, h, layout), axis=0) / height - 0.5
        x = np.mean(cell_windows(width, w, layout), axis=0) / width - 0.5
    return np.exp(-0.5 * ((y[:, None] / 0.25) ** 2 + (x[None, :] / 0.25) ** 2))


def _num_top(top_k, cells):
    if not 0.0 < float(top_k) <= 1.0:
        raise ValueError(f"top_k must be a fraction in (0, 1], got {top_k}.")
    return max(1, int(round(float(top_k) * cells)))


def top_k_positions(scores, top_k=0.2):
    """The `top_k` fraction of highest-scoring positions of each map.

    Args:
        scores: `(..., h, w)` maps.
        top_k: fraction of the `h * w` positions kept, in (0, 1]; at least one position is
            kept (`k = max(1, round(top_k * h * w))`).

    Returns:
        `(..., h, w)` bool with exactly `k` True per map. Ties are broken by position (the
        lower flat index first), so the choice is deterministic.
    """
    scores = np.asarray(scores, np.float64)
    h, w = scores.shape[-2:]
    k = _num_top(top_k, h * w)
    flat = scores.reshape(-1, h * w)
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    keep = np.zeros(flat.shape, bool)
    np.put_along_axis(keep, order, True, axis=1)
    return keep.reshape(scores.shape)


#: How `top_k_iou` treats positions tied at the cut (see its docstring).
TIE_RULES = ("average", "position")


def _expected_hit_ratio(above_hits, need, tied, tied_hits, region_size, k):
    """E[(a + X) / (n + k - a - X)] for X ~ Hypergeometric(tied, tied_hits, need): the IoU
    when `need` of the `tied` positions are drawn uniformly, `tied_hits` of them in the
    region of `region_size` cells, on top of `above_hits` region cells already kept."""
    total = math.comb(tied, need)
    expected = 0.0
    for hits in range(max(0, need - (tied - tied_hits)), min(need, tied_hits) + 1):
        weight = math.comb(tied_hits, hits) * math.comb(tied - tied_hits, need - hits)
        inter = above_hits + hits
        expected += weight / total * inter / (region_size + k - inter)
    return expected


def top_k_iou(scores, region, top_k=0.2, ties="average", tie_tolerance=0.0):
    """IoU of each map's top-k% positions with a region, per map.

    Why the tie rule matters: a map that does not rank some positions (a centred prior on
    an even grid, whose central cells are equal; a mask that is flat in a frame) does not
    choose between them, and breaking such ties by position rewards whatever the first
    positions hold. On the 4x2 grid of a 64x32 frame the four central cells of the centre
    prior tie, and taking the upper two (position order) lands on the synthetic people's
    torso: 0.65-0.70 IoU, against 0.33-0.36 when the tie is left to chance
    (docs/results.md, "Ties in the mask score").

    Args:
        scores: `(N, h, w)` maps (or `(h, w)`, broadcast against `region`, e.g. the
            `centre_prior`).
        region: `(N, h, w)` bool ground truth on the same grid.
        top_k: see `top_k_positions`.
        ties: `"average"` (default): the positions tied with the k-th highest score are
            drawn uniformly at random to fill the `k`, and the result is the expected IoU
            over those draws (exact, from the hypergeometric distribution): a map is
            credited only with the choices it makes. `"position"`: ties go to the lower
            flat index (`top_k_positions`), the only rule before this argument existed
            (mask scores in older `results.json` files carry no `"ties"` entry).
        tie_tolerance: with `ties="average"`, scores within this distance of the k-th
            highest count as tied with it (a scalar, or `(N,)` per map); 0 means exact
            ties only. `mask_score` passes the flatness tolerance of `flat_fraction`, so a
            flat mask scores what chance does.

    Returns:
        `(N,)` float64 IoU `|top ∩ region| / |top ∪ region|` (its expectation under
        `"average"`), NaN where the region is empty (no ground truth to point at; left out
        by `np.nanmean`).
    """
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}.")
    region = np.asarray(region, bool)
    empty = region.sum(axis=(-2, -1)) == 0
    if ties == "position":
        top = top_k_positions(scores, top_k)
        top = np.broadcast_to(top, region.shape)
        inter = np.logical_and(top, region).sum(axis=(-2, -1))
        union = np.logical_or(top, region).sum(axis=(-2, -1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(empty, np.nan, inter / np.maximum(union, 1))

    scores = np.broadcast_to(np.asarray(scores, np.float64), region.shape)
    h, w = region.shape[-2:]
    k = _num_top(top_k, h * w)
    flat_scores = scores.reshape(-1, h * w)
    flat_region = region.reshape(-1, h * w)
    tolerance = np.broadcast_to(np.asarray(tie_tolerance, np.float64), flat_scores.shape[:1])
    if (tolerance < 0).any() or not np.isfinite(tolerance).all():
        raise ValueError(f"tie_tolerance must be finite and >= 0, got {tie_tolerance!r}.")
    kth = -np.sort(-flat_scores, axis=1)[:, k - 1]
    above = flat_scores > (kth + tolerance)[:, None]
    tied = ~above & (flat_scores >= (kth - tolerance)[:, None])
    out = np.full(flat_scores.shape[0], np.nan)
    for i in np.flatnonzero(~empty.reshape(-1)):
        out[i] = _expected_hit_ratio(
            above_hits=int((above[i] & flat_region[i]).sum()),
            need=k - int(above[i].sum()),
            tied=int(tied[i].sum()),
            tied_hits=int((tied[i] & flat_region[i]).sum()),
            region_size=int(flat_region[i].sum()),
            k=k,
        )
    return out.reshape(region.shape[:-2])


def best_top_k_iou(region, top_k=0.2):
    """The highest IoU any choice of the top-k% positions can reach with each region map:
    `min(k, n) / max(k, n)` for a region of `n` cells (NaN where `n = 0`)."""
    region = np.asarray(region, bool)
    h, w = region.shape[-2:]
    k = _num_top(top_k, h * w)
    n = region.sum(axis=(-2, -1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n == 0, np.nan, np.minimum(n, k) / np.maximum(n, k))


def flat_tolerance(maps, tolerance=0.01):
    """The score difference below which two positions of these masks count as equal:
    `tolerance` times the standard deviation of all the maps' values, and at least float
    noise (1e-6 of their mean magnitude).

    Args:
        maps: `(N, h, w)` masks.
        tolerance: the fraction of the values' standard deviation.

    Returns:
        float >= 0.
    """
    maps = np.asarray(maps, np.float64)
    noise = 1e-6 * max(1.0, float(np.abs(maps).mean()))
    return max(float(tolerance) * float(maps.std()), noise)


def flat_fraction(maps, tolerance=0.01):
    """The fraction of maps that are flat: constant within the map up to `flat_tolerance`.

    Why: a flat mask chooses no position, so its top-k positions are chance (`top_k_iou`
    with `ties="average"` scores it so) or tie order (`ties="position"`). A query or key
    convolution that collapsed to zero makes ASRE's attention uniform and every mask flat.

    Args:
        maps: `(N, h, w)` masks.
        tolerance: a map is flat when its range is at most this fraction of the standard
            deviation of all `N * h * w` values.

    Returns:
        float in [0, 1].
    """
    maps = np.asarray(maps, np.float64)
    spread = maps.max(axis=(-2, -1)) - maps.min(axis=(-2, -1))
    return float(np.mean(spread <= flat_tolerance(maps, tolerance)))


# ------------------------------------------------------------------------------ the score


@dataclasses.dataclass
class MaskScore:
    """What `mask_score` measured (IoUs in [0, 1], means over the scored frames).

    Attributes:
        re_iou: IoU of the ID-relevant ASRE mask's top-k% positions with the person, or
            `None` for a model without that ASRE (an ablation without the `"re"` branch).
        ir_iou: the same for the ID-irrelevant mask.
        centre_iou: the same for the fixed `centre_prior` (the bar to beat).
        best_iou: the highest IoU any k positions could reach (`best_top_k_iou`): with the
            person covering more or fewer than k cells, 1.0 is out of reach.
        regions: per attribute region, a dict of `re_iou`, `ir_iou`, `centre_iou`,
            `best_iou` and `num_frames` (frames where the region covers a cell; the IoUs
            are `None` when none does).
        num_frames: frames scored (person covering at least one cell).
        num_frames_skipped: frames left out because their person covered no cell.
        num_tracklets: tracklets the frames came from.
        grid: `(h, w)` of the masks.
        top_k: the fraction of positions kept.
        image_size: `(height, width)` the frames were resized to.
        threshold: the cell-coverage fraction at which a cell counts as the region.
        re_flat, ir_flat: the fraction of the scored frames in which that mask is flat
            (`flat_fraction`), whose IoU is then chance's (`ties="average"`) or the tie
            order's (`ties="position"`); `None` without the mask.
        ties: the tie rule of every IoU here (`top_k_iou`).
        cell_layout: where the grid's cells lie on the frame (`cell_windows`); scores
            recorded before it existed used `"tiled"`.
    """

    re_iou: float | None
    ir_iou: float | None
    centre_iou: float
    best_iou: float
    regions: dict
    num_frames: int
    num_frames_skipped: int
    num_tracklets: int
    grid: tuple
    top_k: float
    image_size: tuple
    threshold: float = 0.5
    re_flat: float | None = None
    ir_flat: float | None = None
    ties: str = "average"
    cell_layout: str = "centred"

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["grid"] = list(self.grid)
        out["image_size"] = list(self.image_size)
        return out

    def one_line(self) -> str:
        """The person IoUs of both masks and the centre prior, on one line for logs."""
        h, w = self.grid
        return (
            f"mask IoU with the person (top {100 * self.top_k:g}% of {h}x{w}, "
            f"{self.num_frames} frames): re {_fmt(self.re_iou)}  ir {_fmt(self.ir_iou)}  "
            f"centre prior {self.centre_iou:.3f}  (best {self.best_iou:.3f})" + self._flat_note()
        )

    def _flat_note(self):
        flat = [
            f"{name} {100 * value:.0f}%"
            for name, value in (("re", self.re_flat), ("ir", self.ir_flat))
            if value
        ]
        if not flat:
            return ""
        scored = "as chance" if self.ties == "average" else "by tie order"
        return f"; flat masks (IoU {scored}): {', '.join(flat)} of frames"

    def __str__(self) -> str:
        h, w = self.grid
        lines = [
            f"Mask score: top {100 * self.top_k:g}% of the {h}x{w} mask positions vs the "
            f"ground-truth person, IoU over {self.num_frames} frames of {self.num_tracklets} "
            f"tracklets ({self.image_size[0]}x{self.image_size[1]} input, "
            f"{self.cell_layout} cells)",
            f"  re-mask {_fmt(self.re_iou)}  ir-mask {_fmt(self.ir_iou)}  centre prior "
            f"{self.centre_iou:.3f}  (best possible {self.best_iou:.3f}; ties: {self.ties})",
        ]
        if self._flat_note():
            lines.append(
                "  " + self._flat_note()[2:] + ": constant within the frame, so their top-k "
                "positions are not the mask's choice"
            )
        for name, r in self.regions.items():
            if r["num_frames"]:
                lines.append(
                    f"  {name:<7s}: re-mask {_fmt(r['re_iou'])}  ir-mask {_fmt(r['ir_iou'])}  "
                    f"centre prior {r['centre_iou']:.3f}  (best {r['best_iou']:.3f}, "
                    f"{r['num_frames']} frames)"
                )
            else:
                lines.append(f"  {name:<7s}: covers no cell of the {h}x{w} grid in any frame")
        if self.num_frames_skipped:
            lines.append(
                f"  ({self.num_frames_skipped} frames skipped: their person covers no cell)"
            )
        return "\n".join(lines)


def _fmt(value):
    return "n/a" if value is None else f"{value:.3f}"


def has_masks(tracklet) -> bool:
    """Whether a tracklet's first frame has a ground-truth `<frame>_mask.png` beside it."""
    return os.path.isfile(mask_path(tracklet.frames[0]))


def read_label_map(frame_path) -> np.ndarray:
    """The `(H, W)` uint8 label map written beside a frame (`<frame>_mask.png`)."""
    path = mask_path(frame_path)
    try:
        with Image.open(path) as img:
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise ValueError(
            f"Label map {path!r} of frame {frame_path!r} does not exist; mask_score needs "
            "tracklets whose every frame has one (the synthetic dataset writes them)."
        ) from None


def _pick_tracklets(tracklets, max_tracklets):
    if max_tracklets is None or len(tracklets) <= int(max_tracklets):
        return tracklets
    if int(max_tracklets) < 1:
        raise ValueError(f"max_tracklets must be >= 1 or None, got {max_tracklets}.")
    index = np.linspace(0, len(tracklets) - 1, int(max_tracklets)).round().astype(int)
    return [tracklets[i] for i in np.unique(index)]


def _no_grad():
    import contextlib

    import keras

    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def iter_model_masks(model, tracklets, seq_len=4, image_size=(256, 128), batch_size=8):
    """Runs a model with `return_masks=True` on `seq_len` evenly spaced frames of each
    tracklet, a batch of tracklets at a time, and yields what it saw and its ASRE masks.

    `mask_score` and the mask overlays of `keras_asanet.visualization` both read masks
    through this function, so a figure shows exactly the masks that are scored.

    Args:
        model: as in `mask_score`.
        tracklets: a sequence of `Tracklet`.
        seq_len: frames per tracklet (one clip each).
        image_size: `(height, width)` the frames are resized to.
        batch_size: clips per model call.

    Yields:
        `(paths, clips, masks)` per batch: `paths` a list (one per tracklet) of the
        `seq_len` frame paths, `clips` the `(B, seq_len, H, W, 3)` float32 input in
        [0, 255], `masks` a dict with `"re_mask"` and / or `"ir_mask"`, each
        `(B, seq_len, h, w)` float64 (a mask the model does not compute is absent).

    Raises:
        ValueError: the model returns no `(output, masks)` pair, no mask, or masks of
            another shape.
    """
    from keras import ops

    tracklets = list(tracklets)
    for start in range(0, len(tracklets), int(batch_size)):
        batch = tracklets[start : start + int(batch_size)]
        paths = [[t.frames[j] for j in evenly_spaced(t.num_frames, seq_len)] for t in batch]
        clips = np.stack(
            [np.stack([read_frame(p, image_size) for p in clip]) for clip in paths]
        ).astype(np.float32)
        with _no_grad():
            outputs = model(clips, training=False, return_masks=True)
        if not (isinstance(outputs, (tuple, list)) and len(outputs) == 2):
            raise ValueError(
                "Reading ASRE masks needs a model returning (output, masks) when called with "
                f"return_masks=True, got {type(outputs).__name__}."
            )
        present = [key for key in MASK_KEYS if outputs[1].get(key) is not None]
        if not present:
            raise ValueError(
                f"The model returns no ASRE mask (expected {MASK_KEYS}, got keys "
                f"{sorted(outputs[1])})."
            )
        masks = {}
        for key in present:
            value = np.asarray(ops.convert_to_numpy(outputs[1][key]), np.float64)
            if value.ndim == 5 and value.shape[-1] == 1:
                value = value[..., 0]
            if value.shape[:2] != (len(batch), seq_len) or value.ndim != 4:
                raise ValueError(
                    f"The model's {key} has shape {value.shape}; expected "
                    f"({len(batch)}, {seq_len}, h, w)."
                )
            masks[key] = value
        yield paths, clips, masks


def mask_score(
    model,
    tracklets,
    top_k=0.2,
    seq_len=4,
    image_size=None,
    batch_size=8,
    max_tracklets=None,
    regions=None,
    threshold=0.5,
    ties="average",
    cell_layout="centred",
) -> MaskScore:
    """Scores where an ASA-Net's ASRE masks point against ground-truth person masks.

    Why it exists: re-ID numbers alone do not say whether the attribute branches guide the
    identity features to the person (the paper's claim for ASRE, §III-B) or whether the masks
    are noise. On data with label maps (the synthetic dataset) this measures it, beside a
    centre prior that knows nothing about the image.

    For each tracklet, `seq_len` evenly spaced frames are decoded and resized exactly like the
    model evaluation's (RGB float in [0, 255]) and run through
    `model(clips, training=False, return_masks=True)`. For every frame and each mask, the
    top-k% positions are compared with the ground-truth person on the mask grid (see the
    module docstring for the area-averaging and the threshold), and IoUs are averaged over
    frames. Positions a map does not tell apart are left to chance (`ties`): the centre
    prior's equal central cells, and a mask's positions within `flat_tolerance` of each
    other, so a flat mask scores what a random choice does. ASRE's mask is linear by default
    (no activation); its highest values are taken as the positions it attends to (a mask that
    learned the opposite sign, with a negative `alpha`, would score below the centre prior).

    Args:
        model: an `ASANet` (anything whose call accepts `training` and `return_masks` and
            returns `(output, {"re_mask": (B, T, h, w), "ir_mask": (B, T, h, w)})`; a model
            with one ASRE only returns one mask, the other's IoU is then `None`).
        tracklets: a sequence of `Tracklet`; those without label maps are ignored.
        top_k: fraction of the mask positions kept per frame, in (0, 1].
        seq_len: frames per tracklet (evenly spaced), run as one clip.
        image_size: `(height, width)` the frames are resized to; by default the model's
            input size if fixed, else `(256, 128)` (`resolve_image_size`). Pass the
            evaluation's size.
        batch_size: clips per model call.
        max_tracklets: score at most this many tracklets, evenly spread over the list
            (deterministic), or `None` for all.
        regions: dict region name -> label values scored beside the person; default
            top, bottom, hat and bag (`DEFAULT_REGIONS`).
        threshold: a cell counts as a region when that fraction of it is covered.
        ties: `"average"` (default) or `"position"`, see `top_k_iou`.
        cell_layout: where the mask cells lie on the frame, for the ground truth and the
            centre prior (`cell_windows`): `"centred"` (default) on the feature positions of
            ASA-Net's torchvision-style ResNet; `"tiled"`, the frame cut into equal tiles,
            reproduces scores recorded before this argument existed.

    Returns:
        A `MaskScore`.

    Raises:
        ValueError: no tracklet has label maps, or the model returns no masks.

    Example:

    >>> score = mask_score(model, dataset.query, image_size=(64, 32))  # doctest: +SKIP
    >>> print(score)                                                    # doctest: +SKIP
    """

    from keras_asanet.evaluation.feature_extraction import resolve_image_size

    tracklets = list(tracklets)
    scored = [t for t in tracklets if has_masks(t)]
    if not scored:
        raise ValueError(
            f"None of the {len(tracklets)} tracklets has ground-truth label maps "
            "(<frame>_mask.png beside its frames); mask_score needs a dataset that writes "
            "them, such as keras_asanet.data.make_synthetic_mars."
        )
    scored = _pick_tracklets(scored, max_tracklets)
    if int(seq_len) < 1 or int(batch_size) < 1:
        raise ValueError(f"seq_len and batch_size must be >= 1, got {seq_len}, {batch_size}.")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}.")
    _num_top(top_k, 1)
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}.")
    _check_layout(cell_layout)
    seq_len, batch_size = int(seq_len), int(batch_size)
    image_size = resolve_image_size(model, image_size)
    regions = dict(DEFAULT_REGIONS if regions is None else regions)

    masks = {key: [] for key in MASK_KEYS}
    labels = []
    for paths, _, batch_masks in iter_model_masks(
        model, scored, seq_len=seq_len, image_size=image_size, batch_size=batch_size
    ):
        for key, value in batch_masks.items():
            masks[key].append(value.reshape(-1, *value.shape[2:]))
        labels += [read_label_map(p) for clip in paths for p in clip]
    masks = {key: np.concatenate(v) for key, v in masks.items() if v}
    grid = next(iter(masks.values())).shape[1:]

    def region_cells(select):
        return np.stack(
            [cell_fractions(select(lab), grid, cell_layout) >= threshold for lab in labels]
        )

    tolerances = {key: flat_tolerance(value) for key, value in masks.items()}
    prior = centre_prior(grid, cell_layout, image_size)

    def mean_iou(key, frames, region):
        if key not in masks:
            return None
        iou = top_k_iou(masks[key][frames], region, top_k, ties, tolerances[key])
        return float(np.mean(iou))

    def score(region):
        frames = region.any(axis=(1, 2))
        if not frames.any():
            return {
                "re_iou": None,
                "ir_iou": None,
                "centre_iou": None,
                "best_iou": None,
                "num_frames": 0,
            }
        r = region[frames]
        return {
            "re_iou": mean_iou("re_mask", frames, r),
            "ir_iou": mean_iou("ir_mask", frames, r),
            "centre_iou": float(np.mean(top_k_iou(prior, r, top_k, ties))),
            "best_iou": float(np.mean(best_top_k_iou(r, top_k))),
            "num_frames": int(frames.sum()),
        }

    def flat(key, frames):
        # Flat by the same tolerance as the ties, so a flat frame is exactly a chance frame.
        if key not in masks:
            return None
        maps = masks[key][frames]
        spread = maps.max(axis=(-2, -1)) - maps.min(axis=(-2, -1))
        return float(np.mean(spread <= tolerances[key]))

    person_cells = region_cells(lambda lab: lab > 0)
    person_frames = person_cells.any(axis=(1, 2))
    person = score(person_cells)
    if not person["num_frames"]:
        raise ValueError(
            f"In none of the {len(labels)} frames does the person cover {threshold:.0%} of a "
            f"cell of the {grid[0]}x{grid[1]} mask grid; use larger frames (image_size)."
        )
    return MaskScore(
        re_iou=person["re_iou"],
        ir_iou=person["ir_iou"],
        centre_iou=person["centre_iou"],
        best_iou=person["best_iou"],
        regions={
            name: score(region_cells(lambda lab, v=v: np.isin(lab, np.atleast_1d(v))))
            for name, v in regions.items()
        },
        num_frames=person["num_frames"],
        num_frames_skipped=len(labels) - person["num_frames"],
        num_tracklets=len(scored),
        grid=(int(grid[0]), int(grid[1])),
        top_k=float(top_k),
        image_size=tuple(image_size),
        threshold=float(threshold),
        re_flat=flat("re_mask", person_frames),
        ir_flat=flat("ir_mask", person_frames),
        ties=ties,
        cell_layout=cell_layout,
    )


def add_mask_score(report, model, tracklets, **kwargs):
    """Sets `report.mask_score` to `mask_score(model, tracklets, **kwargs)`, or adds a note
    to the report saying why it was not computed (not an ASANet, no label maps, no frame
    where the person covers a mask cell, ...), so that a missing score never fails the
    evaluation it belongs to.

    Args:
        report: an `EvaluationReport`.
        model: the evaluated model.
        tracklets: the tracklets to score (e.g. `[*dataset.query, *dataset.gallery]`).
        **kwargs: passed to `mask_score` (`seq_len`, `image_size`, `max_tracklets`, ...).

    Returns:
        The `MaskScore`, or `None` when it was not computed.
    """
    from keras_asanet.evaluation.asanet_evaluation import is_asanet

    if not is_asanet(model):
        report.notes.append("mask score not computed: the model is not an ASANet.")
        return None
    try:
        report.mask_score = mask_score(model, tracklets, **kwargs)
    except ValueError as err:
        report.notes.append(f"mask score not computed: {err}")
        return None
    return report.mask_score
