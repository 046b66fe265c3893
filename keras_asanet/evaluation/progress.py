"""The evaluation's progress bars: tqdm's notebook widget where it can be drawn, its text bar
elsewhere.

`tqdm.auto` picks the widget inside Jupyter but warns ("IProgress not found") in a kernel
without ipywidgets, which the tutorials' kernels need not have; the text bar works there.
"""


def progress_bar(*args, **kwargs):
    """A `tqdm` progress bar (arguments as `tqdm.tqdm`: an iterable, `total=`, ...)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(*args, **kwargs)
