"""Frame decoding with errors that name the file, shared by pipelines and feature extraction."""

from __future__ import annotations

import numpy as np
from PIL import Image, UnidentifiedImageError


def read_frame(
    path: str, image_size: tuple[int, int] | None = None, flip: bool = False
) -> np.ndarray:
    """Decodes one frame to a uint8 RGB array, optionally resized.

    Args:
        path: an image file (JPEG, PNG, ...).
        image_size: `(height, width)` to resize to (bilinear), or `None` to keep the size.
        flip: mirror horizontally (after resizing).

    Returns:
        `(H, W, 3)` uint8 array.

    Raises:
        ValueError: the file is missing, truncated or not an image (the message names it).
    """
    try:
        with Image.open(path) as img:
            if img.mode != "RGB":
                img = img.convert("RGB")
            if image_size is not None:
                height, width = image_size
                if img.size != (width, height):
                    img = img.resize((width, height), Image.BILINEAR)
            if flip:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise ValueError(f"Frame file {path!r} does not exist.") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"Frame file {path!r} could not be decoded as an image: {err}") from None


def read_clip(paths, image_size: tuple[int, int], dtype=np.float32, flip=False) -> np.ndarray:
    """Decodes frames into one `(T, H, W, 3)` clip with values in [0, 255].

    The model normalises inside its graph, so clips stay in raw pixel range. `dtype=np.uint8`
    skips the float conversion (the training pipeline converts while augmenting).
    """
    clip = np.empty((len(paths), image_size[0], image_size[1], 3), dtype)
    for i, p in enumerate(paths):
        clip[i] = read_frame(p, image_size, flip)
    return clip
