"""Which frames of a tracklet make a clip: restricted random for training, evenly spaced or
dense chunks for evaluation.

All functions return frame *indices* so that the same choice can be replayed (resume) and
tested without images.
"""

from __future__ import annotations

import numpy as np


def _check(num_frames: int, seq_len: int) -> None:
    if int(seq_len) < 1:
        raise ValueError(f"seq_len (T) must be >= 1, got {seq_len}.")
    if int(num_frames) < 1:
        raise ValueError(f"Cannot sample frames from an empty tracklet (num_frames={num_frames}).")


def restricted_random(num_frames: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """Restricted random sampling (Li et al., 2018): split the tracklet into `seq_len` equal
    chunks and take one random frame from each, in temporal order.

    A tracklet shorter than `seq_len` repeats frames: each chunk is then one (repeated) frame,
    spread evenly over the tracklet.

    Args:
        num_frames: frames in the tracklet (>= 1).
        seq_len: T, frames in the clip (>= 1).
        rng: the numpy generator that makes the choice (the pipeline owns and checkpoints it).

    Returns:
        `(seq_len,)` int64 indices, non-decreasing.
    """
    _check(num_frames, seq_len)
    edges = np.linspace(0, num_frames, seq_len + 1)
    starts = np.floor(edges[:-1]).astype(np.int64)
    ends = np.maximum(np.floor(edges[1:]).astype(np.int64), starts + 1)
    ends = np.minimum(ends, num_frames)
    return starts + (rng.random(seq_len) * (ends - starts)).astype(np.int64)


def evenly_spaced(num_frames: int, seq_len: int) -> np.ndarray:
    """`seq_len` deterministic frames: the middle frame of each of `seq_len` equal chunks."""
    _check(num_frames, seq_len)
    edges = np.linspace(0, num_frames, seq_len + 1)
    centres = (edges[:-1] + edges[1:]) / 2.0
    return np.minimum(np.floor(centres).astype(np.int64), num_frames - 1)


def dense_chunks(num_frames: int, seq_len: int) -> np.ndarray:
    """Every frame, in consecutive chunks of `seq_len` (the paper's test-time default).

    The last chunk is completed by repeating the tracklet's last frame, so every chunk has
    exactly `seq_len` frames and each frame is used at least once.

    Returns:
        `(num_chunks, seq_len)` int64 indices with `num_chunks = ceil(num_frames / seq_len)`.
    """
    _check(num_frames, seq_len)
    num_chunks = -(-num_frames // seq_len)
    idx = np.arange(num_chunks * seq_len, dtype=np.int64)
    return np.minimum(idx, num_frames - 1).reshape(num_chunks, seq_len)
