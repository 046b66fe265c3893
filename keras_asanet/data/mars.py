"""Reader of the MARS video re-ID dataset in its published layout."""

from __future__ import annotations

import os
import re

import numpy as np

from keras_asanet.data.tracklet import Tracklet
from keras_asanet.data.video_reid_dataset import VideoReIDDataset

_MARS_NAME = re.compile(
    r"^(?P<pid>-?\d{1,4}|00-1)C(?P<cam>\d)T(?P<tracklet>\d{4})F(?P<frame>\d{3})"
)


class Mars(VideoReIDDataset):
    """MARS (Zheng et al., ECCV 2016), read from the layout it is published in.

    ```
    root/
      bbox_train/<pid>/<pid>C<cam>T<tracklet>F<frame>.jpg   e.g. 0001/0001C1T0001F001.jpg
      bbox_test/<pid>/...                                  0000 = distractors, 00-1 = junk
      info/train_name.txt, info/test_name.txt              one frame name per line
      info/tracks_train_info.mat  (track_train_info)       rows [start, end, pid, camid],
      info/tracks_test_info.mat   (track_test_info)        1-based, inclusive
      info/query_IDX.mat          (query_IDX)              1-based rows of the test tracks
    ```

    Junk tracklets (pid -1) are dropped; distractors (pid 0) stay in the gallery. The query is
    the `query_IDX` rows (1,980 on the real data), the gallery the other test rows (9,330), as
    torchreid and AGW do ("usual" setup; `keras_asanet.evaluation.mars_protocol` builds the
    "mixing" setup from the same lists). Camera ids are made 0-based.

    Args:
        root: the folder holding `bbox_train/`, `bbox_test/` and `info/`.
        attributes: `"auto"` (a `mars_attributes.csv` at `root` if present, else the packaged
            annotations of Chen et al.), a CSV path, or `None`.
        verify_frames: check that the first and last frame of every tracklet exist (cheap:
            two `stat` calls per tracklet) so a broken copy fails at load time.
        verbose: print the summary table.

    Example:

    ```python
    mars = Mars("/data/MARS", verbose=True)
    len(mars.query), len(mars.gallery)  # (1980, 9330) on the real data
    ```
    """

    name = "mars"
    schema_name = "mars"
    root_attribute_file = "mars_attributes.csv"

    def __init__(self, root, attributes="auto", verify_frames=True, verbose=False):
        self.verify_frames = verify_frames
        super().__init__(root, attributes=attributes, verbose=verbose)

    @classmethod
    def layout_description(cls) -> str:
        return (
            "the MARS layout: bbox_train/, bbox_test/ and info/ with train_name.txt, "
            "test_name.txt, tracks_train_info.mat, tracks_test_info.mat and query_IDX.mat"
        )

    def _load(self):
        self.require_dir("bbox_train")
        self.require_dir("bbox_test")
        self.require_dir("info")
        train_names = self._read_names("train_name.txt")
        test_names = self._read_names("test_name.txt")
        train_rows = self._read_mat("tracks_train_info.mat", "track_train_info", 4)
        test_rows = self._read_mat("tracks_test_info.mat", "track_test_info", 4)
        query_idx = self._read_mat("query_IDX.mat", "query_IDX", None).reshape(-1) - 1
        if query_idx.size == 0:
            raise ValueError(f"{self._info('query_IDX.mat')}: query_IDX is empty.")
        if query_idx.min() < 0 or query_idx.max() >= len(test_rows):
            raise ValueError(
                f"{self._info('query_IDX.mat')}: indices must lie in 1..{len(test_rows)} "
                f"(rows of track_test_info), got {query_idx.min() + 1}..{query_idx.max() + 1}."
            )
        if len(np.unique(query_idx)) != len(query_idx):
            raise ValueError(f"{self._info('query_IDX.mat')}: query_IDX repeats an index.")

        train = self._tracklets(train_names, train_rows, "bbox_train", "tracks_train_info.mat")
        test = self._tracklets(test_names, test_rows, "bbox_test", "tracks_test_info.mat")
        is_query = np.zeros(len(test_rows), bool)
        is_query[query_idx] = True
        # Junk (pid -1) is dropped; the query keeps query_IDX order, the gallery file order.
        query = [test[i] for i in query_idx if test[i] is not None]
        gallery = [t for t, q in zip(test, is_query) if t is not None and not q]
        train = [t for t in train if t is not None]
        return train, query, gallery

    # ------------------------------------------------------------------ parts

    def _info(self, filename):
        return os.path.join(self.root, "info", filename)

    def _read_names(self, filename):
        path = self.require_file("info", filename)
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
        if not names:
            raise ValueError(f"{path}: the frame name list is empty.")
        return names

    def _read_mat(self, filename, key, columns):
        import scipy.io  # here, not at the top: ~0.2 s that `import keras_asanet` need not pay

        path = self.require_file("info", filename)
        try:
            mat = scipy.io.loadmat(path)
        except Exception as err:  # scipy raises several types for corrupt files
            raise ValueError(f"{path}: not a readable MATLAB .mat file ({err}).") from None
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise ValueError(f"{path}: expected a variable {key!r}, found {found}.")
        arr = np.asarray(mat[key])
        if columns is not None and (arr.ndim != 2 or arr.shape[1] != columns):
            raise ValueError(
                f"{path}: {key!r} must be an (N, {columns}) array of [start, end, pid, camid] "
                f"rows, got shape {arr.shape}."
            )
        if not np.issubdtype(arr.dtype, np.number) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{path}: {key!r} must hold integers.")
        return arr.astype(np.int64)

    def _tracklets(self, names, rows, folder, mat_name):
        where = self._info(mat_name)
        if rows.size and rows[:, 1].max() > len(names):
            raise ValueError(
                f"{where}: tracks end at frame {rows[:, 1].max()} but the name list has only "
                f"{len(names)} names; the name list is shorter than the track rows."
            )
        out = []
        for row_no, (start, end, pid, camid) in enumerate(rows, start=1):
            if start < 1 or end < start:
                raise ValueError(
                    f"{where}: row {row_no} [start={start}, end={end}, pid={pid}, "
                    f"camid={camid}] is an empty tracklet (expected 1 <= start <= end)."
                )
            if pid == -1:
                out.append(None)
                continue
            frame_names = names[start - 1 : end]
            parsed = _MARS_NAME.match(frame_names[0])
            if parsed is None:
                raise ValueError(
                    f"{where}: row {row_no}: frame name {frame_names[0]!r} is not of the MARS "
                    "form <pid>C<cam>T<tracklet>F<frame>.jpg"
                )
            if int(parsed["cam"]) != camid or any(n[:4] != frame_names[0][:4] for n in frame_names):
                raise ValueError(
                    f"{where}: row {row_no} (pid {pid}, camera {camid}) spans frames of other "
                    f"people or cameras: {frame_names[0]!r} .. {frame_names[-1]!r}."
                )
            pid_dir = frame_names[0][:4]
            frames = tuple(os.path.join(self.root, folder, pid_dir, n) for n in frame_names)
            if self.verify_frames:
                for p in (frames[0], frames[-1]):
                    if not os.path.isfile(p):
                        raise FileNotFoundError(
                            f"{where}: row {row_no} names frame {p!r}, which does not exist."
                        )
            out.append(
                Tracklet(
                    frames=frames,
                    pid=int(pid),
                    camid=int(camid) - 1,
                    tracklet_id=int(parsed["tracklet"]),
                    original_pid=int(pid),
                )
            )
        return out
