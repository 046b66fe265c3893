"""A synthetic video re-ID dataset in the exact MARS layout: the library's embedded default.

Real MARS is 1.2 M frames behind a licence; tests, tutorials and the main job need something
that installs nowhere and still exercises what ASA-Net is about. Each identity here is a set of
ID-relevant attributes (clothing colours, bags, hat, hair, age/build, gender, skirt) *plus* an
identity-specific detail (a chest emblem and shoe colour), with colours shared between
identities so attributes alone are ambiguous. Each tracklet has its own pose/viewpoint and
motion (walking, running, riding, staying, various), visible over its frames, and is seen by
one of several cameras, each a site whose style (palette, floor, texture, clutter, light) is drawn
from the seed while every tracklet gets its own background and lighting in that style, so a
model cannot memorise a few backgrounds and a dataset of another seed shows new scenes (version
2; version 1 had one fixed background per camera). Boxes jitter, some tracklets are
occluded, cut off, crowded or small (with the quality flags set), and the test split has
distractor (pid 0) and junk (pid -1) tracklets. `Mars(root)` reads the result unchanged.

Beside every frame `<name>.jpg` a label map `<name>_mask.png` marks the person and each
attribute region (see `MASK_LABELS`) so attention masks can be scored against ground truth.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
from PIL import Image

from keras_asanet.data.attributes import MARS_SCHEMA, QUALITY_FLAGS

#: Values of the `_mask.png` label maps. The person mask is `label > 0`.
MASK_LABELS = {"background": 0, "body": 1, "top": 2, "bottom": 3, "hat": 4, "bag": 5}
SYNTHETIC_VERSION = 2
INFO_NAME = "synthetic_info.json"

_TOP_RGB = {
    "black": (28, 28, 30),
    "purple": (118, 52, 150),
    "green": (42, 140, 62),
    "blue": (40, 72, 180),
    "gray": (128, 128, 128),
    "white": (232, 232, 228),
    "yellow": (228, 206, 40),
    "red": (200, 32, 32),
}
_BOTTOM_RGB = {
    "white": (230, 230, 226),
    "purple": (110, 50, 140),
    "black": (26, 26, 28),
    "green": (40, 120, 60),
    "dark_gray": (72, 72, 76),
    "pink": (238, 150, 180),
    "yellow": (220, 200, 50),
    "blue": (38, 62, 150),
    "brown": (118, 78, 40),
}
_EMBLEM_RGB = np.array(
    [
        (255, 0, 0),
        (0, 200, 0),
        (0, 0, 255),
        (255, 255, 0),
        (255, 0, 255),
        (0, 255, 255),
        (255, 128, 0),
        (128, 0, 255),
        (0, 128, 128),
        (128, 64, 0),
        (255, 255, 255),
        (0, 0, 0),
    ],
    np.float32,
)
_SKIN = np.array((214, 170, 140), np.float32)
_HAIR = np.array((40, 28, 20), np.float32)
_GREY_HAIR = np.array((170, 170, 170), np.float32)
_AGE_SCALE = (0.74, 0.88, 1.0, 0.96)  # young, teenager, adult, old
_TORSO_HALF_WIDTH = (0.3, 0.25, 0.18, 0.25, 0.3)  # frontal .. back (pose 0..4)
_MOTION_SWING = (0.10, 0.2, 0.06, 0.0)  # walking, running, riding, staying (leg amplitude)
_MOTION_STEP = (0.7, 1.3, 0.9, 0.0)  # phase advance per frame


def _rgb(table, names):
    return {i: np.array(table[n], np.float32) for i, n in enumerate(names) if n in table}


_TOP_BY_CLASS = _rgb(_TOP_RGB, MARS_SCHEMA["top_color"].class_names)
_BOTTOM_BY_CLASS = _rgb(_BOTTOM_RGB, MARS_SCHEMA["bottom_color"].class_names)


# --------------------------------------------------------------------------- identities


def _sample_identity(rng):
    """ID-relevant attributes (Chen et al.'s MARS columns) plus the identity's own details."""
    gender = int(rng.random() < 0.5)  # 1 = female in this generator
    attrs = {
        "top_color": int(rng.integers(9)),
        "bottom_color": int(
            rng.choice(10, p=[0.08, 0.05, 0.25, 0.06, 0.14, 0.05, 0.04, 0.2, 0.08, 0.05])
        ),
        "age": int(rng.choice(4, p=[0.08, 0.17, 0.65, 0.1])),
        "top_length": int(rng.random() < 0.45),  # 1 = short sleeves
        "bottom_length": int(rng.random() < 0.25),  # 1 = short
        "shoulder_bag": int(rng.random() < 0.2),
        "backpack": int(rng.random() < 0.25),
        "hat": int(rng.random() < 0.15),
        "hand_bag": int(rng.random() < 0.12),
        "hair": int(rng.random() < (0.75 if gender else 0.1)),  # 1 = long
        "gender": gender,
        "bottom_type": int(rng.random() < (0.4 if gender else 0.0)),  # 1 = skirt / dress
    }
    details = {
        "emblem": int(rng.integers(len(_EMBLEM_RGB))),
        "emblem_row": int(rng.integers(3)),
        "shoes": rng.integers(0, 256, 3).astype(np.float32),
        "complex_top": rng.integers(0, 256, (2, 3)).astype(np.float32),
        "complex_bottom": rng.integers(0, 256, (2, 3)).astype(np.float32),
        "hat_rgb": rng.integers(0, 256, 3).astype(np.float32),
        "bag_rgb": rng.integers(20, 200, 3).astype(np.float32),
        "build": float(rng.uniform(0.92, 1.08)),
    }
    return attrs, details


def _smooth_noise(rng, h, w, cells, amplitude):
    """Low-frequency colour texture: a coarse random grid, bilinearly upsampled to (h, w)."""
    ch, cw = max(2, int(cells[0])), max(2, int(cells[1]))
    grid = rng.normal(0.0, amplitude, (ch, cw, 3)).astype(np.float32)
    ys = np.linspace(0, ch - 1, h, dtype=np.float32)
    xs = np.linspace(0, cw - 1, w, dtype=np.float32)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, ch - 1), np.minimum(x0 + 1, cw - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def _camera(cam, seed, image_size):
    """The style of a camera site, drawn from the dataset seed: palette, floor line, texture,
    clutter density and lighting. Every tracklet gets its own background drawn from this style
    (`_tracklet_background`), so no camera has one background a model could memorise, and a
    dataset of another seed has other sites altogether."""
    rng = np.random.default_rng([seed, 7919, cam])
    return {
        "palette": rng.integers(20, 236, (4, 3)).astype(np.float32),
        "floor": float(rng.uniform(0.62, 0.9)),
        "texture": float(rng.uniform(6.0, 40.0)),
        "cells": (int(rng.integers(2, 9)), int(rng.integers(2, 6))),
        "clutter": (int(rng.integers(1, 5)), int(rng.integers(5, 12))),
        "stripes": bool(rng.random() < 0.4),
        "gain": float(rng.uniform(0.65, 1.25)),
        "tint": rng.uniform(0.85, 1.15, 3).astype(np.float32),
    }


def _tracklet_background(style, rng, image_size):
    """A background of the camera's style with this tracklet's own layout and light."""
    h, w = image_size
    palette = style["palette"] + rng.normal(0, 18, (4, 3)).astype(np.float32)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    bg = (palette[0] * (1 - ramp) + palette[1] * ramp) * np.ones((h, w, 3), np.float32)
    floor = int(h * np.clip(style["floor"] + rng.uniform(-0.08, 0.08), 0.5, 0.95))
    bg[floor:] = palette[2]
    if style["stripes"]:  # tiles, bricks or railings
        period = int(rng.integers(3, 8))
        bg[floor:, ::period] = palette[3]
        bg[: floor : period + 2] = bg[: floor : period + 2] * 0.8 + palette[3] * 0.2
    bg += _smooth_noise(rng, h, w, style["cells"], style["texture"])
    lo, hi = style["clutter"]
    for _ in range(int(rng.integers(lo, hi + 1))):  # poles, windows, signs, parked things
        y0, x0 = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 2))
        bg[
            y0 : y0 + int(rng.integers(3, h // 2)), x0 : x0 + int(rng.integers(2, max(3, w // 3)))
        ] = rng.integers(0, 256, 3)
    gain = style["gain"] * rng.uniform(0.85, 1.15) * style["tint"] * rng.uniform(0.93, 1.07, 3)
    return bg, gain.astype(np.float32)


# ----------------------------------------------------------------------------- drawing


class _Canvas:
    """Draws axis-aligned parts given in person-box coordinates (v down, u across, 0..1)."""

    def __init__(self, image, labels, box):
        self.image, self.labels = image, labels
        self.y0, self.x0, self.h, self.w = box

    def fill(self, v0, v1, u0, u1, rgb, label):
        h_img, w_img = self.labels.shape
        y0 = int(round(self.y0 + v0 * self.h))
        y1 = int(round(self.y0 + v1 * self.h))
        x0 = int(round(self.x0 + u0 * self.w))
        x1 = int(round(self.x0 + u1 * self.w))
        y0, y1 = max(y0, 0), min(max(y1, y0 + 1), h_img)
        x0, x1 = max(x0, 0), min(max(x1, x0 + 1), w_img)
        if y1 > y0 and x1 > x0:
            self.image[y0:y1, x0:x1] = rgb
            self.labels[y0:y1, x0:x1] = label


def _draw_person(canvas, attrs, details, pose, motion, phase):
    """Renders one person in one frame; what is drawn depends on pose and motion."""
    lab = MASK_LABELS
    half = _TORSO_HALF_WIDTH[pose] * details["build"]
    facing_back = pose in (3, 4)
    lateral = pose in (1, 2, 3)
    swing = _MOTION_SWING[motion] * np.sin(phase)
    bob = 0.015 * abs(np.sin(phase)) if motion in (0, 1) else 0.0
    lean = 0.05 if motion == 1 else 0.0
    cu = 0.5 + lean * 0.5
    top_rgb = _TOP_BY_CLASS.get(attrs["top_color"])
    bottom_rgb = _BOTTOM_BY_CLASS.get(attrs["bottom_color"])

    # Legs / skirt (drawn first so the torso overlaps them).
    leg_w = 0.13 if lateral else 0.15
    for side, sgn in ((0, -1), (1, 1)):
        offset = sgn * swing if lateral else 0.0
        lift = max(0.0, sgn * swing) * 0.5 if not lateral else 0.0
        u0 = cu + (sgn * 0.09 if not lateral else -leg_w / 2) + offset - (leg_w if sgn < 0 else 0)
        if not lateral:
            u0 = cu - 0.02 - leg_w if sgn < 0 else cu + 0.02
        v_end = 0.96 - lift
        if motion == 2:  # riding: bent legs
            v_end = 0.85 - 0.05 * side
        leg_rgb = bottom_rgb if bottom_rgb is not None else details["complex_bottom"][side]
        covered = 0.72 if attrs["bottom_length"] else v_end
        canvas.fill(0.5 + bob, covered + bob, u0, u0 + leg_w, leg_rgb, lab["bottom"])
        if covered < v_end:
            canvas.fill(covered + bob, v_end + bob, u0, u0 + leg_w, _SKIN, lab["body"])
        canvas.fill(
            v_end + bob, v_end + 0.04 + bob, u0, u0 + leg_w + 0.03, details["shoes"], lab["body"]
        )
    if attrs["bottom_type"]:  # skirt / dress
        rgb = bottom_rgb if bottom_rgb is not None else details["complex_bottom"][0]
        canvas.fill(0.48 + bob, 0.7 + bob, cu - half - 0.03, cu + half + 0.03, rgb, lab["bottom"])

    # Torso; "complex" tops are striped with the identity's own two colours.
    v_top, v_bottom = 0.14 + bob, 0.52 + bob
    if top_rgb is not None:
        canvas.fill(v_top, v_bottom, cu - half, cu + half, top_rgb, lab["top"])
    else:
        stripes = np.linspace(v_top, v_bottom, 7)
        for i in range(6):
            canvas.fill(
                stripes[i],
                stripes[i + 1],
                cu - half,
                cu + half,
                details["complex_top"][i % 2],
                lab["top"],
            )
    # Arms: sleeves in top colour, forearms bare when short-sleeved; they swing when lateral.
    arm_rgb = top_rgb if top_rgb is not None else details["complex_top"][0]
    for sgn in (-1, 1):
        if lateral and sgn < 0:
            continue
        a_u = cu + sgn * (half + 0.05) - 0.05 + (-swing * 0.6 if lateral else 0.0)
        sleeve_end = 0.3 if attrs["top_length"] else 0.46
        canvas.fill(v_top + 0.02, sleeve_end + bob, a_u, a_u + 0.1, arm_rgb, lab["top"])
        canvas.fill(sleeve_end + bob, 0.5 + bob, a_u, a_u + 0.1, _SKIN, lab["body"])
    # Identity detail: an emblem on the chest, seen from the front only.
    if pose in (0, 1):
        ev = 0.2 + 0.08 * details["emblem_row"]
        canvas.fill(
            ev + bob,
            ev + 0.07 + bob,
            cu - 0.08,
            cu + 0.08,
            _EMBLEM_RGB[details["emblem"]],
            lab["top"],
        )

    # Head, hair, hat.
    hair_rgb = _GREY_HAIR if attrs["age"] == 3 else _HAIR
    head_half = 0.13 if not lateral else 0.11
    canvas.fill(0.02 + bob, 0.14 + bob, cu - head_half, cu + head_half, _SKIN, lab["body"])
    if facing_back:
        canvas.fill(0.02 + bob, 0.14 + bob, cu - head_half, cu + head_half, hair_rgb, lab["body"])
    else:
        canvas.fill(0.01 + bob, 0.05 + bob, cu - head_half, cu + head_half, hair_rgb, lab["body"])
    if attrs["hair"]:  # long hair falls on the shoulders
        v_end = 0.3 if facing_back else 0.22
        canvas.fill(
            0.05 + bob,
            v_end + bob,
            cu - head_half - 0.03,
            cu - head_half + 0.04,
            hair_rgb,
            lab["body"],
        )
        canvas.fill(
            0.05 + bob,
            v_end + bob,
            cu + head_half - 0.04,
            cu + head_half + 0.03,
            hair_rgb,
            lab["body"],
        )
        if facing_back:
            canvas.fill(
                0.1 + bob, v_end + bob, cu - head_half, cu + head_half, hair_rgb, lab["body"]
            )
    if attrs["hat"]:
        canvas.fill(
            -0.02 + bob,
            0.05 + bob,
            cu - head_half - 0.03,
            cu + head_half + 0.03,
            details["hat_rgb"],
            lab["hat"],
        )

    # Bags: a backpack is seen whole from the back, at the side when lateral, as straps in front.
    bag = details["bag_rgb"]
    if attrs["backpack"]:
        if facing_back:
            canvas.fill(0.17 + bob, 0.44 + bob, cu - half + 0.04, cu + half - 0.04, bag, lab["bag"])
        elif lateral:
            canvas.fill(0.17 + bob, 0.42 + bob, cu - half - 0.14, cu - half, bag, lab["bag"])
        else:
            for sgn in (-1, 1):
                canvas.fill(
                    0.15 + bob,
                    0.34 + bob,
                    cu + sgn * half * 0.6 - 0.03,
                    cu + sgn * half * 0.6 + 0.03,
                    bag,
                    lab["bag"],
                )
    if attrs["shoulder_bag"]:
        canvas.fill(
            0.42 + bob, 0.56 + bob, cu + half - 0.02, cu + half + 0.14, bag * 0.8, lab["bag"]
        )
        canvas.fill(
            0.16 + bob, 0.44 + bob, cu + half - 0.03, cu + half + 0.01, bag * 0.8, lab["bag"]
        )
    if attrs["hand_bag"]:
        canvas.fill(0.48 + bob, 0.6 + bob, cu - half - 0.2, cu - half - 0.05, bag * 1.1, lab["bag"])
    if motion == 2:  # riding: the bicycle is drawn as two wheels and a frame (not a person part)
        for wu in (0.15, 0.85):
            canvas.fill(
                0.8,
                1.0,
                wu - 0.12,
                wu + 0.12,
                np.array((20, 20, 20), np.float32),
                lab["background"],
            )
        canvas.fill(0.78, 0.82, 0.15, 0.85, np.array((90, 90, 100), np.float32), lab["background"])


# --------------------------------------------------------------------------- tracklets


def _render_tracklet(spec, identity, camera, image_size, seed):
    """Renders the frames and label maps of one tracklet; returns uint8 arrays."""
    rng = np.random.default_rng([seed, 104729, spec["pid"] + 2, spec["cam"], spec["tracklet"]])
    h, w = image_size
    bg, gain = _tracklet_background(camera, rng, image_size)
    frames, masks = [], []
    scale = spec.get("scale", 1.0)
    motion, pose = spec["motion"], spec["pose"]
    phase = rng.uniform(0, 2 * np.pi)
    drift = rng.uniform(-0.4, 0.4) if motion in (0, 1, 2) else 0.0
    for f in range(spec["num_frames"]):
        image = bg.copy()
        labels = np.zeros((h, w), np.uint8)
        m = motion if motion != 4 else int(rng.choice([0, 1, 3]))
        p = pose if pose != 5 else int((f // 3 + spec["tracklet"]) % 5)
        if identity is not None:
            attrs, details = identity
            box_h = h * 0.92 * _AGE_SCALE[attrs["age"]] * scale * rng.uniform(0.97, 1.03)
            box_w = box_h * 0.5
            cy = h - box_h - 1 + rng.uniform(-1, 1) + spec.get("dy", 0.0) * h
            cx = (
                (w - box_w) / 2
                + rng.uniform(-1.2, 1.2)
                + drift * f * 0.15
                + spec.get("dx", 0.0) * w
            )
            if spec.get("second_person") is not None:
                other = spec["second_person"]
                _draw_person(
                    _Canvas(
                        image, np.zeros_like(labels), (cy + 2, cx + box_w * 0.75, box_h, box_w)
                    ),
                    *other,
                    0,
                    3,
                    phase,
                )
            _draw_person(
                _Canvas(image, labels, (cy, cx, box_h, box_w)), attrs, details, p, m, phase
            )
            phase += _MOTION_STEP[m] if m < 4 else 0.7
        occluder = spec.get("occluder")
        if occluder is not None:
            y0, y1, x0, x1, rgb = occluder
            image[y0:y1, x0:x1] = rgb
            labels[y0:y1, x0:x1] = 0
        image = image * gain + rng.normal(0, 4.0, image.shape)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
        masks.append(labels)
    return frames, masks


def _plan(num_identities, num_cameras, frames_range, seed, image_size):
    """Decides identities, splits, tracklets and their conditions (all from `seed`)."""
    rng = np.random.default_rng(seed)
    pids = np.arange(1, num_identities + 1)
    perm = rng.permutation(pids)
    num_train = num_identities // 2
    train_pids = set(int(p) for p in perm[:num_train])
    identities = {int(p): _sample_identity(rng) for p in pids}
    h, w = image_size
    tracks = []
    for pid in pids:
        pid = int(pid)
        is_train = pid in train_pids
        single_camera = (not is_train) and rng.random() < 0.08
        n_cams = 1 if single_camera else int(rng.choice([2, 3, 4], p=[0.4, 0.4, 0.2]))
        n_cams = min(n_cams, num_cameras)
        cams = sorted(
            int(c) for c in rng.choice(np.arange(1, num_cameras + 1), n_cams, replace=False)
        )
        for cam in cams:
            n_tracks = 2 if single_camera else int(rng.choice([1, 2], p=[0.65, 0.35]))
            for t in range(1, n_tracks + 1):
                spec = {
                    "pid": pid,
                    "cam": cam,
                    "tracklet": t,
                    "split": "train" if is_train else "test",
                    "num_frames": int(rng.integers(frames_range[0], frames_range[1] + 1)),
                    "motion": int(rng.choice(5, p=[0.42, 0.16, 0.1, 0.22, 0.1])),
                    "pose": int(rng.choice(6, p=[0.24, 0.16, 0.2, 0.14, 0.2, 0.06])),
                    "quality": dict.fromkeys(QUALITY_FLAGS, 0),
                    "annotated": bool(rng.random() > 0.05),
                }
                r = rng.random()
                if r < 0.15:  # partial occlusion by a pole, a car, another object
                    if rng.random() < 0.5:
                        x0 = int(rng.integers(0, w - w // 3))
                        spec["occluder"] = (
                            0,
                            h,
                            x0,
                            x0 + int(w * rng.uniform(0.2, 0.35)),
                            rng.integers(0, 256, 3),
                        )
                    else:
                        y0 = int(h * rng.uniform(0.55, 0.75))
                        spec["occluder"] = (y0, h, 0, w, rng.integers(0, 256, 3))
                    spec["quality"]["occlusion"] = 1
                elif r < 0.22:  # box cuts the person off
                    spec["dx" if rng.random() < 0.5 else "dy"] = float(
                        rng.choice([-1, 1]) * rng.uniform(0.25, 0.35)
                    )
                    spec["quality"]["cut_out"] = 1
                elif r < 0.27:  # someone else in the box
                    spec["second_person"] = identities[int(rng.choice(pids))]
                    spec["quality"]["multi_person"] = 1
                elif r < 0.32:  # person small in a wide box
                    spec["scale"] = float(rng.uniform(0.55, 0.7))
                    spec["quality"]["background_dominant"] = 1
                tracks.append(spec)
    # Distractors (pid 0: background only) and junk (pid -1: mostly cut off) in the test split.
    n_extra = max(2, num_identities // 10)
    for kind_pid, count in ((0, n_extra), (-1, max(1, n_extra // 2))):
        for i in range(count):
            spec = {
                "pid": kind_pid,
                "cam": int(rng.integers(1, num_cameras + 1)),
                "tracklet": i + 1,
                "split": "test",
                "num_frames": int(rng.integers(frames_range[0], frames_range[1] + 1)),
                "motion": 3,
                "pose": 0,
                "annotated": False,
            }
            if kind_pid == -1:
                spec["junk_of"] = int(rng.choice(pids))
                spec["dy"] = 0.55
            tracks.append(spec)
    return train_pids, identities, tracks


def _choose_queries(test_tracks, rng):
    """One query per test identity, from one of its cameras; the rest is the gallery."""
    by_pid = {}
    for i, s in enumerate(test_tracks):
        if s["pid"] > 0:
            by_pid.setdefault(s["pid"], []).append(i)
    queries = []
    for pid in sorted(by_pid):
        rows = by_pid[pid]
        cams = sorted({test_tracks[i]["cam"] for i in rows})
        # Identities seen by >= 3 cameras give a query from two cameras, like MARS (1,980
        # queries for 626 identities).
        for cam in cams[: 2 if len(cams) >= 3 else 1]:
            candidates = [i for i in rows if test_tracks[i]["cam"] == cam]
            queries.append(int(rng.choice(candidates)))
    return sorted(queries)


def default_synthetic_root(num_identities=300, image_size=(64, 32), seed=0, base=None):
    """The cache folder of one synthetic parameter set, under `~/.keras_asanet/synthetic/`.

    Each (version, identities, size, seed) gets its own folder, so building the dataset of
    another seed (e.g. to evaluate on unseen identities and scenes) never rebuilds, or mixes
    with, the one a run trained on.

    Args:
        num_identities: identities of the dataset (half of them in its training split).
        image_size: `(height, width)` of the rendered frames.
        seed: the dataset seed (people, camera sites, light).
        base: the cache's parent folder instead of `~/.keras_asanet/synthetic`.

    Returns:
        The folder's path (a str); nothing is created.

    Example:

    >>> os.path.basename(default_synthetic_root(300, (64, 32), seed=1000))
    'v2-n300-64x32-seed1000'
    """
    base = base or os.path.join(os.path.expanduser("~"), ".keras_asanet", "synthetic")
    h, w = (int(v) for v in image_size)
    name = f"v{SYNTHETIC_VERSION}-n{int(num_identities)}-{h}x{w}-seed{int(seed)}"
    return os.path.join(base, name)


def _frame_name(pid, cam, tracklet, frame):
    pid_text = "00-1" if pid == -1 else f"{pid:04d}"
    return f"{pid_text}C{cam}T{tracklet:04d}F{frame:03d}.jpg"


def make_synthetic_mars(
    root,
    num_identities=300,
    image_size=(64, 32),
    seed=0,
    num_cameras=8,
    frames_per_tracklet=(8, 24),
    overwrite=False,
    verbose=False,
):
    """Writes the synthetic dataset at `root` in the MARS layout (and reuses a matching one).

    Args:
        root: output folder; `Mars(root)` reads it afterwards.
        num_identities: identities in all (half train, half test); at least 8.
        image_size: `(height, width)` of every frame.
        seed: the whole dataset is a function of the arguments (same seed, same bytes).
        num_cameras: camera sites (2..9); each has its own style of backgrounds and light.
        frames_per_tracklet: `(min, max)` frames of a tracklet.
        overwrite: rebuild even if `root` holds a dataset made with the same arguments.
        verbose: print progress and the counts.

    The dataset is rendered into a sibling folder and moved to `root` when complete, so a
    build killed halfway leaves `root` as it was (the next call removes the dead build's
    folder and builds again) and concurrent builds of one `root` both succeed. A rebuild
    (other arguments, or `overwrite`) replaces only the entries the library writes
    (`LIBRARY_ENTRIES`); other files in `root` stay.

    Returns:
        A dict of the generation parameters and counts (also written to
        `root/synthetic_info.json`).

    Example:

    ```python
    from keras_asanet.data import Mars, make_synthetic_mars
    make_synthetic_mars("/tmp/synthetic_mars", num_identities=40)
    mars = Mars("/tmp/synthetic_mars")
    ```
    """
    if int(num_identities) < 8:
        raise ValueError(f"num_identities must be >= 8, got {num_identities}.")
    if not 2 <= int(num_cameras) <= 9:
        raise ValueError(
            f"num_cameras must be in 2..9 (one digit in MARS names), got {num_cameras}."
        )
    lo, hi = (int(v) for v in frames_per_tracklet)
    if not 1 <= lo <= hi <= 999:
        raise ValueError(
            "frames_per_tracklet must be (min, max) with 1 <= min <= max <= 999, "
            f"got {frames_per_tracklet}."
        )
    h, w = (int(v) for v in image_size)
    if h < 16 or w < 8:
        raise ValueError(f"image_size must be at least (16, 8), got {image_size}.")
    root = os.path.abspath(os.fspath(root))
    params = {
        "version": SYNTHETIC_VERSION,
        "num_identities": int(num_identities),
        "image_size": [h, w],
        "seed": int(seed),
        "num_cameras": int(num_cameras),
        "frames_per_tracklet": [lo, hi],
    }
    existing = _read_info(root)
    if _reusable(existing, params, overwrite):
        if verbose:
            print(f"Reusing the synthetic dataset at {root}")
        return existing
    _check_not_foreign(root, existing, "exists and is not")
    _remove_stale_staging(root)
    staging = _staging_folder(root)
    try:
        info = _write_dataset(staging, params)
        published = _publish(staging, root, params, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if published is not None:
        return published
    if verbose:
        print(f"Wrote a synthetic MARS-layout dataset to {root}: {info['counts']}")
    return info


def _write_dataset(root, params):
    """Renders and writes the whole dataset of `params` into the fresh folder `root`."""
    h, w = params["image_size"]
    lo, hi = params["frames_per_tracklet"]
    num_identities, num_cameras, seed = (
        params["num_identities"],
        params["num_cameras"],
        params["seed"],
    )
    info_path = os.path.join(root, INFO_NAME)
    train_pids, identities, tracks = _plan(
        int(num_identities), int(num_cameras), (lo, hi), int(seed), (h, w)
    )
    cameras = {c: _camera(c, int(seed), (h, w)) for c in range(1, int(num_cameras) + 1)}
    for folder in ("bbox_train", "bbox_test", "info"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)

    names = {"train": [], "test": []}
    rows = {"train": [], "test": []}
    annotations = []
    for spec in tracks:
        split = spec["split"]
        if spec["pid"] > 0:
            identity = identities[spec["pid"]]
        elif spec["pid"] == -1:
            identity = identities[spec["junk_of"]]
        else:
            identity = None
        frames, masks = _render_tracklet(spec, identity, cameras[spec["cam"]], (h, w), int(seed))
        folder = os.path.join(root, f"bbox_{split}", _frame_name(spec["pid"], 1, 1, 1)[:4])
        os.makedirs(folder, exist_ok=True)
        start = len(names[split]) + 1
        for f, (frame, mask) in enumerate(zip(frames, masks), start=1):
            name = _frame_name(spec["pid"], spec["cam"], spec["tracklet"], f)
            Image.fromarray(frame).save(os.path.join(folder, name), quality=92)
            Image.fromarray(mask).save(os.path.join(folder, name[:-4] + "_mask.png"))
            names[split].append(name)
        rows[split].append([start, len(names[split]), spec["pid"], spec["cam"]])
        if spec["pid"] > 0 and spec["annotated"]:
            annotations.append((spec, identities[spec["pid"]][0]))

    import scipy.io  # only when writing (it costs a noticeable part of the package import)

    for split in ("train", "test"):
        with open(os.path.join(root, "info", f"{split}_name.txt"), "w") as f:
            f.write("\n".join(names[split]) + "\n")
        scipy.io.savemat(
            os.path.join(root, "info", f"tracks_{split}_info.mat"),
            {f"track_{split}_info": np.asarray(rows[split], np.float64)},
        )
    test_tracks = [s for s in tracks if s["split"] == "test"]
    queries = _choose_queries(test_tracks, np.random.default_rng([int(seed), 31337]))
    scipy.io.savemat(
        os.path.join(root, "info", "query_IDX.mat"),
        {"query_IDX": (np.asarray(queries, np.float64) + 1)[None, :]},
    )
    _write_attribute_csv(os.path.join(root, "mars_attributes.csv"), annotations)

    counts = {
        "train_pids": len(train_pids),
        "test_pids": int(num_identities) - len(train_pids),
        "train_tracklets": len(rows["train"]),
        "test_tracklets": len(rows["test"]),
        "queries": len(queries),
        "train_frames": len(names["train"]),
        "test_frames": len(names["test"]),
        "distractor_tracklets": sum(s["pid"] == 0 for s in tracks),
        "junk_tracklets": sum(s["pid"] == -1 for s in tracks),
        "annotated_tracklets": len(annotations),
    }
    info = {"params": params, "counts": counts, "mask_labels": MASK_LABELS, "complete": True}
    with open(info_path, "w") as f:
        json.dump(info, f, indent=2)
    return info


# Everything `_write_dataset` writes at the top of a dataset folder: the only entries a
# rebuild ever removes, so a user's own files beside them survive.
LIBRARY_ENTRIES = ("bbox_train", "bbox_test", "info", "mars_attributes.csv", INFO_NAME)
_STAGING_TAG = ".building-"


def _reusable(existing, params, overwrite):
    """Whether `existing` (a folder's info, or `None`) is a complete build of `params`."""
    return bool(
        not overwrite and existing and existing.get("params") == params and existing.get("complete")
    )


def _check_not_foreign(root, existing, what):
    """Refuses a non-empty `root` without an info file: it is not the library's to replace."""
    if existing is None and os.path.isdir(root) and os.listdir(root):
        raise FileExistsError(
            f"{root!r} {what} a synthetic dataset made by keras_asanet (it has no "
            f"{INFO_NAME}); choose an empty or new folder."
        )


def _read_info(root):
    """The dataset's `synthetic_info.json`, or `None` when there is none (or it is unreadable,
    e.g. cut short: then the folder is treated as a library build to redo)."""
    path = os.path.join(root, INFO_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return {"complete": False}
    return info if isinstance(info, dict) else {"complete": False}


def _staging_folder(root):
    """A fresh sibling of `root` the dataset is built in, named after this host and process so
    that concurrent builds never share one and a dead build's folder can be recognised."""
    import socket
    import uuid

    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tag = f"{_STAGING_TAG}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = root + tag
    os.makedirs(staging)
    return staging


def _remove_stale_staging(root):
    """Removes the staging folders of builds of `root` killed on this host (their process is
    gone); a live build's, or another host's, is left alone."""
    import socket

    parent, name = os.path.split(root)
    if not os.path.isdir(parent):
        return
    prefix = f"{name}{_STAGING_TAG}{socket.gethostname()}-"
    for entry in os.listdir(parent):
        if not entry.startswith(prefix):
            continue
        pid_text = entry[len(prefix) :].split("-")[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _publish(staging, root, params, overwrite):
    """Moves the finished build in `staging` to `root`.

    A missing or empty `root` becomes the build in one rename, so no reader ever sees half a
    dataset. When a concurrent build of the same parameters got there first, its dataset is
    kept and returned. Otherwise `root` holds a library dataset of other parameters (or
    `overwrite` was asked): its `LIBRARY_ENTRIES` are replaced, the info file first marked
    incomplete and written back last, so a crash in between leaves a folder the next call
    rebuilds; any other file in `root` stays.

    Returns:
        The info of the dataset now at `root` when it is not this build's, else `None`.
    """
    if os.path.isdir(root) and not os.listdir(root):
        try:
            os.rmdir(root)
        except OSError:
            pass
    try:
        os.rename(staging, root)
        return None
    except OSError:
        if not os.path.isdir(root):
            raise
    existing = _read_info(root)
    _check_not_foreign(root, existing, "was filled during the build by something that is not")
    if _reusable(existing, params, overwrite):
        return existing  # a concurrent build of the same parameters finished first
    info_path = os.path.join(root, INFO_NAME)
    with open(info_path, "w") as f:
        json.dump({"params": (existing or {}).get("params"), "complete": False}, f)
    for entry in LIBRARY_ENTRIES[:-1]:
        target = os.path.join(root, entry)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)
        os.replace(os.path.join(staging, entry), target)
    os.replace(os.path.join(staging, INFO_NAME), info_path)
    return None


def _write_attribute_csv(path, annotations):
    """Writes Chen et al.'s column layout (1-based camera, MARS tracklet number)."""
    quality_columns = [spellings[0] for spellings in QUALITY_FLAGS.values()]
    id_relevant = [a for a in MARS_SCHEMA.id_relevant]
    header = ["person_id", "camera_id", "tracklets_id", "motion", "pose", *quality_columns]
    header += [a.column for a in id_relevant]
    lines = [",".join(header)]
    for spec, attrs in annotations:
        values = [spec["pid"], spec["cam"], spec["tracklet"], spec["motion"], spec["pose"]]
        values += [spec["quality"][q] for q in QUALITY_FLAGS]
        values += [attrs[a.name] for a in id_relevant]
        lines.append(",".join(str(int(v)) for v in values))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def mask_path(frame_path: str) -> str:
    """The label-map file written beside a synthetic frame."""
    return frame_path[: -len(".jpg")] + "_mask.png"
