"""Shared plumbing of the figures: a Figure on the Agg canvas, saving, frame colours.

Every figure of `keras_asanet.visualization` is a `matplotlib.figure.Figure` drawn on a
`FigureCanvasAgg` (object-oriented API, no `pyplot`): making one neither switches the user's
matplotlib backend nor leaves a figure open in pyplot's registry, and a notebook still shows a
returned figure as usual.
"""

from __future__ import annotations

import os

import numpy as np

#: Border colours of the retrieval grid (RGB in [0, 1]).
MATCH_COLOUR = (0.0, 0.65, 0.0)
MISMATCH_COLOUR = (0.85, 0.0, 0.0)
QUERY_COLOUR = (0.1, 0.3, 0.9)
DPI = 100


def new_figure(width, height):
    """A `Figure` of `width x height` inches with an Agg canvas attached."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path):
    """Writes `fig` as PNG to `path` (folders created) when `path` is not `None`; returns
    `fig`. The file has the figure's size in pixels (`figsize * 100`): no tight cropping."""
    if path is not None:
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=DPI, format="png")
    return fig


def figure_pixels(fig):
    """The rendered figure as an `(H, W, 3)` uint8 array (what `save_figure` writes)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def as_image(frame):
    """A frame as uint8 RGB for `imshow` (float frames in [0, 255] are rounded and clipped)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    return frame


def hide_ticks(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def set_border(ax, colour, width=4.0):
    """Draws the axis frame (its four spines) in `colour`."""
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)
