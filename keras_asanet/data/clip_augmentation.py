"""Training augmentation of whole clips: one spatial transform shared by every frame.

Re-ID recipes (BoT, AGW, ASA-Net §IV-B) flip, pad-and-crop and randomly erase each training
image; for video the transform must be the same for all frames of a clip, or the temporal
model sees a jittering person. This runs in numpy inside the data-loader workers rather than
as Keras preprocessing layers: those draw an independent transform per batch item (so frames
would need folding into channels), run on the active backend inside every worker (slower, see
`scripts/benchmark.py data`), and Keras' `RandomErasing` samples each side's length
independently instead of Zhong et al.'s area-and-aspect-ratio draw that the paper's recipe uses.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

#: ImageNet mean in [0, 255] pixels: the erasing fill, i.e. zero after the model's normalisation.
IMAGENET_MEAN_PIXELS = (123.675, 116.28, 103.53)


@dataclasses.dataclass(frozen=True)
class ClipTransform:
    """One clip's drawn transform: horizontal flip, crop shift `(dy, dx)` or `None`, and the
    erased box `(y0, y1, x0, x1)` or `None`."""

    flip: bool
    shift: tuple | None
    erase: tuple | None
    gain: tuple | None = None


@dataclasses.dataclass
class ClipAugmentation:
    """Flip, pad-and-crop and random erasing, identical across the frames of a clip.

    Args:
        flip_probability: probability of a horizontal flip.
        padding: pixels of zero padding on every side before a random crop back to size
            (0 disables the crop).
        erasing_probability: probability of erasing one rectangle (Zhong et al., AAAI 2020).
        erasing_area: `(min, max)` fraction of the frame area erased.
        erasing_aspect: `(min, max)` aspect ratio of the erased rectangle (log-uniform).
        erasing_fill: per-channel fill value in pixels (ImageNet mean by default).
        color_jitter: strength `j` of a per-clip lighting change: every pixel is multiplied by
            a brightness gain in `[1 - j, 1 + j]` times a per-channel tint in
            `[1 - j/2, 1 + j/2]` (clipped to [0, 255]), the way camera sites differ in light and
            white balance. 0 (default, the paper's recipe) draws nothing, so the random
            streams of the other transforms are unchanged.

    Call arguments:
        clip: `(T, H, W, 3)` float32 array (pixels in [0, 255]).
        rng: a `numpy.random.Generator` (the pipeline derives one per batch from its seed).

    Returns:
        The augmented `(T, H, W, 3)` float32 clip.
    """

    flip_probability: float = 0.5
    padding: int = 10
    erasing_probability: float = 0.5
    erasing_area: tuple = (0.02, 0.4)
    erasing_aspect: tuple = (0.3, 3.3)
    erasing_fill: tuple = IMAGENET_MEAN_PIXELS
    color_jitter: float = 0.0

    @classmethod
    def for_image_size(cls, height, width, **kwargs):
        """The paper's recipe scaled to the frame size: 10 px of padding at width 128."""
        del height
        return cls(padding=max(1, round(10 * int(width) / 128)), **kwargs)

    def __post_init__(self):
        for name in ("flip_probability", "erasing_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}.")
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}.")
        if not 0.0 <= self.color_jitter < 1.0:
            raise ValueError(f"color_jitter must be in [0, 1), got {self.color_jitter}.")
        lo, hi = self.erasing_area
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError(
                f"erasing_area must satisfy 0 < min <= max < 1, got {self.erasing_area}."
            )
        lo, hi = self.erasing_aspect
        if not 0.0 < lo <= hi:
            raise ValueError(
                f"erasing_aspect must satisfy 0 < min <= max, got {self.erasing_aspect}."
            )

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if clip.ndim != 4 or clip.shape[-1] != 3:
            raise ValueError(
                f"ClipAugmentation expects a (T, H, W, 3) clip, got shape {clip.shape}."
            )
        out = np.empty(clip.shape, np.float32)
        self.apply_into(clip, out, self.draw(clip.shape[1], clip.shape[2], rng))
        return out

    def draw(self, height: int, width: int, rng: np.random.Generator) -> ClipTransform:
        """Draws one clip's transform (flip, crop shift, erased box) from `rng`."""
        flip = bool(rng.random() < self.flip_probability)
        shift = None
        if self.padding:
            # Crop window (y, x) in the padded frame = shift of the frame by (p - y, p - x).
            y, x = (int(v) for v in rng.integers(0, 2 * self.padding + 1, size=2))
            shift = (self.padding - y, self.padding - x)
        box = None
        if rng.random() < self.erasing_probability:
            box = self.erasing_box(height, width, rng)
        gain = None
        if self.color_jitter:
            j = self.color_jitter
            tint = rng.uniform(1 - j / 2, 1 + j / 2, size=3)
            gain = tuple(float(g) for g in rng.uniform(1 - j, 1 + j) * tint)
        return ClipTransform(flip, shift, box, gain)

    def apply_into(self, clip, out, transform, flipped=False) -> None:
        """Writes `clip` (any numeric dtype, e.g. decoded uint8 frames) transformed into the
        array `out` of the same shape.

        A uint8 `out` (the training pipeline's `clip_dtype="uint8"`) gets the same pixels
        rounded to integers: the colour gain is applied in float32 and rounded, the erasing
        fill is the ImageNet mean rounded (124, 116, 104), i.e. within half a grey level of
        zero after the model's normalisation.

        Args:
            clip: `(T, H, W, 3)` frames.
            out: `(T, H, W, 3)` float32 or uint8 destination.
            transform: a `ClipTransform` from `draw`.
            flipped: the frames were already flipped while decoding (the pipeline flips with
                PIL, several times faster than a strided numpy copy).
        """
        _, h, w, _ = clip.shape
        if transform.flip and not flipped:
            clip = clip[:, :, ::-1]
        if transform.shift is not None:
            dy, dx = transform.shift
            # Zero only the uncovered border (the padding that the crop window shows).
            out[:, : max(0, dy)] = 0.0
            out[:, h - max(0, -dy) :] = 0.0
            out[:, :, : max(0, dx)] = 0.0
            out[:, :, w - max(0, -dx) :] = 0.0
            src_y = slice(max(0, -dy), h - max(0, dy))
            src_x = slice(max(0, -dx), w - max(0, dx))
            dst_y = slice(max(0, dy), h - max(0, -dy))
            dst_x = slice(max(0, dx), w - max(0, -dx))
            out[:, dst_y, dst_x] = clip[:, src_y, src_x]
        else:
            out[...] = clip
        if transform.gain is not None:
            if out.dtype == np.float32:
                out *= np.asarray(transform.gain, np.float32)
                np.clip(out, 0.0, 255.0, out=out)
            else:
                scaled = out * np.asarray(transform.gain, np.float32)
                np.clip(np.rint(scaled, out=scaled), 0.0, 255.0, out=scaled)
                out[...] = scaled
        if transform.erase is not None:
            y0, y1, x0, x1 = transform.erase
            fill = np.asarray(self.erasing_fill, np.float32)
            if out.dtype != np.float32:
                fill = np.rint(fill)
            out[:, y0:y1, x0:x1] = fill

    def erasing_box(self, h, w, rng, attempts=100):
        """Zhong et al.'s rectangle: area and log-uniform aspect ratio, retried until it fits."""
        log_lo, log_hi = math.log(self.erasing_aspect[0]), math.log(self.erasing_aspect[1])
        for _ in range(attempts):
            area = h * w * rng.uniform(*self.erasing_area)
            aspect = math.exp(rng.uniform(log_lo, log_hi))
            eh = int(round(math.sqrt(area * aspect)))
            ew = int(round(math.sqrt(area / aspect)))
            if 0 < eh < h and 0 < ew < w:
                y0 = int(rng.integers(0, h - eh + 1))
                x0 = int(rng.integers(0, w - ew + 1))
                return y0, y0 + eh, x0, x0 + ew
        return None
