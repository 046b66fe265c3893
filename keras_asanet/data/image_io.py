"""Frame decoding with errors that name the file, shared by pipelines and feature extraction."""

from __future__ import annotations

import concurrent.futures

import numpy as np
from PIL import Image, UnidentifiedImageError


class FrameError(ValueError):
    """A frame file that is missing or cannot be decoded (the one-line message names it)."""


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
        FrameError: (a `ValueError`) the file is missing, truncated or not an image; the
            one-line message names it.
    """
    return read_frame_at_sizes(path, [image_size], flip=flip)[0]


def read_frame_at_sizes(path: str, image_sizes, flip: bool = False) -> list:
    """Decodes one frame once and returns it at each of several sizes.

    Why it exists: an evaluation needs every test frame at the model's input size and at the
    raw-pixels baseline's (16 x 8); decoding the file once for both halves the decoding,
    which at 64x32 costs more than the resizing. Each array equals `read_frame(path, size,
    flip)` exactly.

    Args:
        path: an image file (JPEG, PNG, ...).
        image_sizes: a sequence of `(height, width)` (bilinear resizing) or `None` (the
            file's own size).
        flip: mirror horizontally (after resizing).

    Returns:
        A list of `(H, W, 3)` uint8 arrays, one per size.

    Raises:
        FrameError: as `read_frame`.
    """
    try:
        with Image.open(path) as img:
            if img.mode != "RGB":
                img = img.convert("RGB")
            frames = []
            for image_size in image_sizes:
                sized = img
                if image_size is not None:
                    height, width = image_size
                    if img.size != (width, height):
                        sized = img.resize((width, height), Image.BILINEAR)
                if flip:
                    sized = sized.transpose(Image.FLIP_LEFT_RIGHT)
                frames.append(np.asarray(sized, dtype=np.uint8))
            return frames
    except FileNotFoundError:
        raise FrameError(f"Frame file {path!r} does not exist.") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        reason = " ".join(str(err).split())  # one line
        raise FrameError(
            f"Frame file {path!r} could not be decoded as an image: {reason}"
        ) from None


def read_clip(paths, image_size: tuple[int, int], dtype=np.float32, flip=False) -> np.ndarray:
    """Decodes frames into one `(T, H, W, 3)` clip with values in [0, 255].

    The model normalises inside its graph, so clips stay in raw pixel range. `dtype=np.uint8`
    skips the float conversion (the training pipeline converts while augmenting).
    """
    clip = np.empty((len(paths), image_size[0], image_size[1], 3), dtype)
    for i, p in enumerate(paths):
        clip[i] = read_frame(p, image_size, flip)
    return clip


def find_bad_frames(paths, workers=1):
    """`[(path, message)]` of the frames `read_frame` cannot decode, in the order given.

    Every file is decoded in full: `PIL.Image.verify` passes a JPEG cut in half (it checks
    the headers only), which fails only when training reaches it.
    """

    def problem(path):
        try:
            read_frame(path)
        except FrameError as err:
            return path, str(err)
        return None

    paths = list(dict.fromkeys(paths))  # each file once
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        return [p for p in pool.map(problem, paths) if p is not None]


def check_frames(paths, workers=1, max_named=10):
    """Decodes every frame once and reports all bad files at once (`find_bad_frames`).

    Raises:
        FrameError: naming the first `max_named` bad files and how many there are.
    """
    paths = list(dict.fromkeys(paths))
    bad = find_bad_frames(paths, workers)
    if bad:
        named = "; ".join(message for _, message in bad[:max_named])
        more = f" (and {len(bad) - max_named} more)" if len(bad) > max_named else ""
        raise FrameError(
            f"{len(bad)} of {len(paths)} frame files cannot be decoded: {named}{more}."
        )
    return len(paths)
