"""Draws the ASA-Net architecture as built by `keras_asanet.models.ASANet` (boxes and arrows).

Usage:
    python scripts/draw_architecture.py [--output docs/images/architecture.png] [--no-svg]
                                        [--dpi 130]

The figure follows `ASANet.call` (keras_asanet/models/asanet.py), not only the paper's
Fig. 3: the two attribute branches and the ID branch start from the backbone map; the three
1x1 convolutions `f_re`, `f_id`, `f_ir` reduce the ID map; the ASRE modules take the reduced
identity map as query and the attribute map as key and value; every clip feature comes out
of a `SpatioTemporalPooling`; `FeatureFusion` forms `f_final`; `BNNeck` gives the test
feature and the identity logits; the losses of Eq. 19 sit where `ASANet.compute_loss` applies
them. Boxes carry the library's class and layer names; the script checks, without importing
Keras, that every class it names is exported by the package, that every text fits in its box
and overlaps no other text, and that no line runs through a text.

Writes PATH (PNG) and, unless --no-svg or PATH ends in .svg, the same figure as SVG beside it.
The output is deterministic: fixed fonts, no timestamps, a fixed SVG id salt.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(ROOT, "docs", "images", "architecture.png")

# Figure size in inches; the axes use inches as data units (x right, y up).
WIDTH, HEIGHT = 12.6, 13.6
# Column centres: ID-relevant attribute branch, its ASRE, ID branch, the other ASRE, the
# ID-irrelevant attribute branch.
XA, XB, XC, XD, XE = 1.3, 3.75, 6.2, 8.65, 11.1
ROUTE_X = 12.42  # the PMI pair-selection line runs down the right margin

TITLE_SIZE = 12.5
BODY_SIZE = 11.5
SMALL_SIZE = 11

COLOURS = {
    "input": ("#f4f4f4", "#555555"),
    "backbone": ("#dfe7f1", "#4a6a8f"),
    "identity": ("#e8e8e8", "#666666"),
    "re": ("#fde3c8", "#c0661a"),  # ID-relevant: orange, as the paper's Fig. 3 and 5
    "ir": ("#d5e6f7", "#2f6fae"),  # ID-irrelevant: blue
    "re_mix": ("#f5e6da", "#a0683a"),  # identity enhanced by an ID-relevant attribute map
    "ir_mix": ("#dde6ef", "#4d7296"),
    "fusion": ("#dff0d8", "#3c7a3c"),
    "neck": ("#e9e0f3", "#6a4c93"),
    "loss": ("#ffffff", "#c62828"),
    "output": ("#ffffff", "#333333"),
}
ARROW = "#333333"
LOSS = "#c62828"

# Every class the figure names, with the subpackage that must export it.
NAMED_CLASSES = {
    "models": ["ASANet"],
    "backbones": ["AGWResNet"],
    "layers": [
        "AttributeResidualBranch",
        "BottleneckBlock",
        "NonLocalBlock2D",
        "ASRE",
        "SpatioTemporalPooling",
        "AttributeHead",
        "FeatureFusion",
        "BNNeck",
    ],
    "losses": [
        "LabelSmoothingCrossEntropy",
        "WeightedRegularizationTriplet",
        "CenterLoss",
        "MultiBinaryAttributeLoss",
        "PMITripletLoss",
    ],
}


def check_class_names(root=ROOT):
    """Fails if a class the figure names is not in its subpackage's `__all__` (read with
    `ast`, so Keras is not imported)."""
    missing = []
    for package, names in NAMED_CLASSES.items():
        path = os.path.join(root, "keras_asanet", package, "__init__.py")
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        exported = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                exported = set(ast.literal_eval(node.value))
        missing += [f"keras_asanet.{package}.{n}" for n in names if n not in exported]
    if missing:
        raise SystemExit(f"draw_architecture.py names classes the package lacks: {missing}")


class Diagram:
    """Boxes, texts and arrows on an axes measured in inches, with a layout check."""

    def __init__(self):
        plt.rcParams.update(
            {
                "font.family": "DejaVu Sans",
                "svg.hashsalt": "keras_asanet-architecture",
                "svg.fonttype": "path",
                "mathtext.fontset": "dejavusans",
            }
        )
        self.fig = plt.figure(figsize=(WIDTH, HEIGHT))
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, WIDTH)
        self.ax.set_ylim(0, HEIGHT)
        self.ax.set_axis_off()
        self.boxes = []  # (patch, [texts inside it])
        self.free_texts = []
        self.segments = []  # ((x0, y0), (x1, y1)) of every line drawn

    # ------------------------------------------------------------------ drawing

    def box(self, cx, cy, w, h, title, lines=(), kind="identity", title_size=TITLE_SIZE):
        """A rounded box centred at (cx, cy) with a bold title and body lines; returns its
        (left, right, bottom, top)."""
        face, edge = COLOURS[kind]
        patch = FancyBboxPatch(
            (cx - w / 2, cy - h / 2),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=face,
            edgecolor=edge,
            linewidth=1.6 if kind == "loss" else 1.3,
            linestyle="-",
            zorder=2,
        )
        self.ax.add_patch(patch)
        title_h = title_size * 1.3 / 72
        body_h = BODY_SIZE * 1.3 / 72
        total = title_h + body_h * len(lines)
        top = cy + total / 2
        texts = [
            self.ax.text(
                cx,
                top - title_h / 2,
                title,
                ha="center",
                va="center",
                fontsize=title_size,
                fontweight="bold",
                color=edge if kind == "loss" else "#1a1a1a",
                zorder=4,
            )
        ]
        for i, line in enumerate(lines):
            texts.append(
                self.ax.text(
                    cx,
                    top - title_h - body_h * (i + 0.5),
                    line,
                    ha="center",
                    va="center",
                    fontsize=BODY_SIZE,
                    color="#1a1a1a",
                    zorder=4,
                )
            )
        self.boxes.append((patch, texts))
        return (cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2)

    def band_label(self, x, y, text, size=BODY_SIZE, **kwargs):
        """A text inside the most recent box (checked against that box)."""
        t = self.ax.text(x, y, text, ha="center", va="center", fontsize=size, zorder=4, **kwargs)
        self.boxes[-1][1].append(t)
        return t

    def text(self, x, y, text, size=SMALL_SIZE, ha="center", va="center", **kwargs):
        kwargs.setdefault("color", "#1a1a1a")
        t = self.ax.text(x, y, text, ha=ha, va=va, fontsize=size, zorder=4, **kwargs)
        self.free_texts.append(t)
        return t

    def line(self, points, colour=ARROW, style="-", width=1.4, arrow=True):
        """A polyline through `points` (inches), with an arrow head at the last point."""
        for p, q in zip(points[:-2], points[1:-1]):
            self.ax.plot(
                [p[0], q[0]],
                [p[1], q[1]],
                color=colour,
                linestyle=style,
                linewidth=width,
                solid_capstyle="butt",
                zorder=1,
            )
            self.segments.append((p, q))
        p, q = points[-2], points[-1]
        self.ax.add_patch(
            FancyArrowPatch(
                p,
                q,
                arrowstyle="-|>" if arrow else "-",
                mutation_scale=14,
                color=colour,
                linestyle=style,
                linewidth=width,
                shrinkA=0,
                shrinkB=0,
                zorder=1,
            )
        )
        self.segments.append((p, q))

    def dot(self, x, y, colour=ARROW):
        self.ax.plot([x], [y], marker="o", markersize=4.5, color=colour, zorder=3)

    # ------------------------------------------------------------------- checks

    def check_layout(self):
        """Every text inside its box and the figure, no two texts overlapping, no line
        through a text, no two boxes overlapping. Returns the list of problems."""
        self.fig.canvas.draw()
        renderer = self.fig.canvas.get_renderer()
        to_inches = self.ax.transData.inverted()
        problems = []

        def extent(artist):
            bb = artist.get_window_extent(renderer)
            (x0, y0), (x1, y1) = to_inches.transform([(bb.x0, bb.y0), (bb.x1, bb.y1)])
            return x0, y0, x1, y1

        all_texts = []
        box_extents = []
        for patch, texts in self.boxes:
            bx0, by0 = patch.get_x(), patch.get_y()
            bx1, by1 = bx0 + patch.get_width(), by0 + patch.get_height()
            box_extents.append(((bx0, by0, bx1, by1), texts[0].get_text()))
            for t in texts:
                x0, y0, x1, y1 = extent(t)
                margin = 0.07
                if x0 < bx0 + margin or x1 > bx1 - margin or y0 < by0 + 0.02 or y1 > by1 - 0.02:
                    problems.append(f"text {t.get_text()!r} overflows its box")
                all_texts.append((t, (x0, y0, x1, y1)))
        for t in self.free_texts:
            all_texts.append((t, extent(t)))
        for t, (x0, y0, x1, y1) in all_texts:
            if x0 < 0.02 or y0 < 0.02 or x1 > WIDTH - 0.02 or y1 > HEIGHT - 0.02:
                problems.append(f"text {t.get_text()!r} leaves the figure")
        for i, (t, a) in enumerate(all_texts):
            for u, b in all_texts[i + 1 :]:
                if _overlap(a, b, pad=0.02):
                    problems.append(f"texts {t.get_text()!r} and {u.get_text()!r} overlap")
        for i, (a, name_a) in enumerate(box_extents):
            for b, name_b in box_extents[i + 1 :]:
                if _overlap(a, b, pad=0.0):
                    problems.append(f"boxes {name_a!r} and {name_b!r} overlap")
        for p, q in self.segments:
            for k in range(101):
                x = p[0] + (q[0] - p[0]) * k / 100
                y = p[1] + (q[1] - p[1]) * k / 100
                for t, (x0, y0, x1, y1) in all_texts:
                    if x0 - 0.03 < x < x1 + 0.03 and y0 - 0.03 < y < y1 + 0.03:
                        problems.append(f"a line runs through {t.get_text()!r}")
                        break
                # Lines may end on a box edge, never cross a box's inside.
                for (bx0, by0, bx1, by1), name in box_extents:
                    if bx0 + 0.03 < x < bx1 - 0.03 and by0 + 0.03 < y < by1 - 0.03:
                        problems.append(f"a line runs through the box {name!r}")
                        break
        return sorted(set(problems))


def _overlap(a, b, pad):
    return not (
        a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1]
    )


def draw():
    """Builds the figure; returns the `Diagram`."""
    d = Diagram()

    # Rows (centre y, inches from the bottom).
    r_in, r_bb, r_br, r_cv, r_as, r_pl, r_fc = 12.85, 11.75, 10.5, 9.3, 8.0, 6.65, 5.45
    r_fu, r_ne, r_lo, r_total = 4.0, 2.55, 1.3, 0.45
    junction = 4.95  # where f_re_attr / f_ir_attr split between their consumers

    # --- title and legend -------------------------------------------------------------
    d.text(0.2, 13.3, "ASA-Net in keras_asanet", size=13, ha="left", fontweight="bold")
    d.text(0.2, 12.98, "keras_asanet.models.ASANet, its call()", size=SMALL_SIZE, ha="left")
    d.text(0.2, 12.72, "C = 1024 (ResNet-50 presets),", size=SMALL_SIZE, ha="left")
    d.text(0.2, 12.48, "128 in asanet_tiny", size=SMALL_SIZE, ha="left")

    lx, ly = 8.55, 13.3
    legend = [
        (ARROW, "-", "feature map / feature"),
        (ARROW, "--", "fusion strategy b only"),
        (LOSS, "-", "input of a loss term"),
        (LOSS, ":", "PMI pair selection (no gradient)"),
    ]
    for i, (colour, style, label) in enumerate(legend):
        y = ly - 0.27 * i
        d.line([(lx, y), (lx + 0.55, y)], colour=colour, style=style)
        d.text(lx + 0.7, y, label, ha="left")

    # --- input and backbone -------------------------------------------------------------
    box_in = d.box(
        XC,
        r_in,
        3.3,
        0.78,
        "input clips (B, T, H, W, 3)",
        ["RGB in [0, 255], normalised inside;", "frames folded: (B·T, H, W, 3)"],
        kind="input",
    )
    box_bb = d.box(
        XC,
        r_bb,
        11.9,
        0.78,
        "AGWResNet.backbone_map  (backbone)",
        [
            "stem + layer1-3 with NonLocalBlock2D, per frame  →  X_origin: C channels, "
            "stride 16 (16 x 8 at 256 x 128)"
        ],
        kind="backbone",
    )
    d.line([(XC, box_in[2]), (XC, box_bb[3])])

    # --- the three branches -----------------------------------------------------------
    box_ra = d.box(
        XA,
        r_br,
        2.45,
        0.95,
        "AttributeResidualBranch",
        ["re_attr_branch", "BottleneckBlocks", "→ X_re_attr: C/2"],
        kind="re",
        title_size=BODY_SIZE,
    )
    box_id = d.box(
        XC,
        r_br,
        2.3,
        0.95,
        "AGWResNet.id_map",
        ["ResNet layer4", "last stride 1", "→ X_ID: 2C"],
        kind="identity",
    )
    box_ia = d.box(
        XE,
        r_br,
        2.45,
        0.95,
        "AttributeResidualBranch",
        ["ir_attr_branch", "BottleneckBlocks", "→ X_ir_attr: C/2"],
        kind="ir",
        title_size=BODY_SIZE,
    )
    for x in (XA, XC, XE):
        d.line([(x, box_bb[2]), (x, box_ra[3])])
    d.text(XA + 0.12, (box_bb[2] + box_ra[3]) / 2, "ID-relevant", ha="left", style="italic")
    d.text(XC + 0.12, (box_bb[2] + box_ra[3]) / 2, "identity", ha="left", style="italic")
    d.text(XE + 0.12, (box_bb[2] + box_ra[3]) / 2, "ID-irrelevant", ha="left", style="italic")

    # --- 1x1 convolutions of the ID map -----------------------------------------------
    conv = {}
    for x, name, kind in ((XB, "f_re", "re_mix"), (XC, "f_id", "identity"), (XD, "f_ir", "ir_mix")):
        conv[name] = d.box(
            x,
            r_cv,
            2.1,
            0.62,
            f"Conv2D 1x1  ({name})",
            ["2C → C/4"],
            kind=kind,
            title_size=BODY_SIZE,
        )
    bus = (box_id[2] + conv["f_id"][3]) / 2
    d.line([(XC, box_id[2]), (XC, bus)], arrow=False)
    d.dot(XC, bus)
    d.line([(XC, bus), (XB, bus), (XB, conv["f_re"][3])])
    d.line([(XC, bus), (XD, bus), (XD, conv["f_ir"][3])])
    d.line([(XC, bus), (XC, conv["f_id"][3])])

    # --- ASRE ---------------------------------------------------------------------------
    box_asre_re = d.box(
        XB,
        r_as,
        2.3,
        1.12,
        "ASRE  (re_asre)",
        ["cross attention, Eq. 8-10", "mask M: (h, w, 1)", "X_I + α·(M ⊙ X_I)"],
        kind="re_mix",
    )
    box_asre_ir = d.box(
        XD,
        r_as,
        2.3,
        1.12,
        "ASRE  (ir_asre)",
        ["cross attention, Eq. 8-10", "mask M: (h, w, 1)", "X_I + α·(M ⊙ X_I)"],
        kind="ir_mix",
    )
    for x, name, box in ((XB, "f_re", box_asre_re), (XD, "f_ir", box_asre_ir)):
        d.line([(x, conv[name][2]), (x, box[3])])
        d.text(x + 0.1, (conv[name][2] + box[3]) / 2, "query X_I", ha="left")

    # --- spatio-temporal pooling band -------------------------------------------------
    box_pool = d.box(
        XC,
        r_pl,
        11.9,
        0.8,
        "SpatioTemporalPooling: spatial pooling of each frame, then the mean over T",
        [],
        kind="backbone",
        title_size=BODY_SIZE,
    )
    label_y = box_pool[2] + 0.2
    for x, label in (
        (XA, "GeM  (pool_re_attr)"),
        (XB, "avg  (pool_re_id)"),
        (XC, "avg  (pool_id)"),
        (XD, "avg  (pool_ir_id)"),
        (XE, "GeM  (pool_ir_attr)"),
    ):
        d.band_label(x, label_y, label, size=SMALL_SIZE)
    # The box helper centres its title; lift it to the top line of the band.
    d.boxes[-1][1][0].set_y(box_pool[3] - 0.2)

    # Attribute maps: down to the pooling band, with a branch into their ASRE as key / value.
    for x, box, asre, side in ((XA, box_ra, box_asre_re, 1), (XE, box_ia, box_asre_ir, -1)):
        d.line([(x, box[2]), (x, r_as)], arrow=False)
        d.dot(x, r_as)
        d.line([(x, r_as), (x, box_pool[3])])
        edge = asre[0] if side == 1 else asre[1]
        d.line([(x, r_as), (edge, r_as)])
        d.text((x + edge) / 2, r_as + 0.17, "key, value", size=SMALL_SIZE)
    d.line([(XB, box_asre_re[2]), (XB, box_pool[3])])
    d.line([(XD, box_asre_ir[2]), (XD, box_pool[3])])
    d.line([(XC, conv["f_id"][2]), (XC, box_pool[3])])
    d.text(XB + 0.1, (box_asre_re[2] + box_pool[3]) / 2, "enhanced map", ha="left")

    # --- FC reductions of the identity features ---------------------------------------
    dense = {}
    for x, name, out, kind in (
        (XB, "w_re", "f_re_ID", "re_mix"),
        (XC, "w_id", "f_ID", "identity"),
        (XD, "w_ir", "f_ir_ID", "ir_mix"),
    ):
        dense[name] = d.box(
            x,
            r_fc,
            1.95,
            0.62,
            f"Dense  ({name})",
            [f"→ {out}: branch_dim"],
            kind=kind,
            title_size=BODY_SIZE,
        )
        d.line([(x, box_pool[2]), (x, dense[name][3])])

    # --- fusion and the attribute heads -------------------------------------------------
    box_fu = d.box(
        XC,
        r_fu,
        6.3,
        0.98,
        "FeatureFusion  (feature_fusion)  →  f_final  (Eq. 7)",
        [
            "a: [f_re_ID, f_ID, f_ir_ID, f_re_attr]",
            "b: [f_re_ID, f_ID, f_ir_ID, Dense([f_re_attr, f_ir_attr])]",
        ],
        kind="fusion",
    )
    box_ha = d.box(
        XA,
        r_fu,
        1.9,
        0.98,
        "AttributeHead",
        ["re_attr_head", "MARS 32 logits"],
        kind="re",
    )
    box_hi = d.box(
        XE,
        r_fu,
        1.9,
        0.98,
        "AttributeHead",
        ["ir_attr_head", "11 logits"],
        kind="ir",
    )
    for name in ("w_re", "w_id", "w_ir"):
        x = (dense[name][0] + dense[name][1]) / 2
        d.line([(x, dense[name][2]), (x, box_fu[3])])
    # f_re_attr: to its head and into the fusion; f_ir_attr: to its head, into the fusion
    # (strategy b only) and to the PMI loss, which picks its pairs in that space.
    d.line([(XA, box_pool[2]), (XA, junction)], arrow=False)
    d.dot(XA, junction)
    d.line([(XA, junction), (XA, box_ha[3])])
    d.line([(XA, junction), (box_fu[0] + 0.35, box_fu[3])])
    d.text(XA - 0.1, (box_pool[2] + junction) / 2 + 0.05, "f_re_attr", ha="right")
    d.line([(XE, box_pool[2]), (XE, junction)], arrow=False)
    d.dot(XE, junction)
    d.line([(XE, junction), (XE, box_hi[3])])
    d.line([(XE, junction), (box_fu[1] - 0.35, box_fu[3])], style="--")
    d.text(XE - 0.1, (box_pool[2] + junction) / 2 + 0.05, "f_ir_attr", ha="right")

    # --- BNNeck and the losses ----------------------------------------------------------
    box_ne = d.box(
        XC,
        r_ne,
        2.5,
        1.0,
        "BNNeck  (bn_neck)",
        ["BN(f_final) → feature", "Dense W_ID → id_logits"],
        kind="neck",
    )
    d.line([(XC, box_fu[2]), (XC, box_ne[3])])
    d.text(XC + 0.1, (box_fu[2] + box_ne[3]) / 2, "f_final", ha="left")

    box_xent = d.box(
        XC,
        r_lo,
        3.1,
        0.62,
        "L_xent  (Eq. 17)",
        ["LabelSmoothingCrossEntropy, ε 0.1"],
        kind="loss",
    )
    d.line([(XC, box_ne[2]), (XC, box_xent[3])], colour=LOSS)
    d.text(XC + 0.1, (box_ne[2] + box_xent[3]) / 2, "id_logits", ha="left", color=LOSS)
    box_feature = d.box(
        XA + 0.25,
        r_lo,
        2.7,
        0.62,
        "test feature",
        ["BN(f_final), eval_feature='bn'"],
        kind="output",
    )
    feature_y = r_ne - 0.25
    feature_x = box_feature[1] - 0.5
    d.line([(box_ne[0], feature_y), (feature_x, feature_y), (feature_x, box_feature[3])])
    d.text((box_ne[0] + feature_x) / 2, feature_y + 0.15, "inference output")

    box_metric = d.box(
        10.0,
        r_lo - 0.05,
        4.2,
        1.22,
        "on f_final (Eq. 12, 14, 15)",
        [
            "L_wrt: WeightedRegularizationTriplet",
            "λ_cent · L_cent: CenterLoss",
            "λ_PMI · L_PMI: PMITripletLoss,",
            "pairs chosen in f_ir_attr",
        ],
        kind="loss",
    )
    metric_x = box_metric[0] + 0.45
    d.line([(metric_x, box_fu[2]), (metric_x, box_metric[3])], colour=LOSS)
    d.text(metric_x + 0.1, box_metric[3] + 0.4, "f_final", ha="left", color=LOSS)
    # PMI: positives and negatives chosen in f_ir_attr, along the right margin.
    pmi_y = box_metric[2] + 0.22
    d.line(
        [(XE, junction), (ROUTE_X, junction), (ROUTE_X, pmi_y), (box_metric[1], pmi_y)],
        colour=LOSS,
        style=":",
        width=1.8,
    )

    for x, head, name in ((XA, box_ha, "re_attr_logits"), (XE, box_hi, "ir_attr_logits")):
        bce = d.box(
            x, r_ne + 0.3, 2.2, 0.62, "L_BCE  (Eq. 18)", ["MultiBinaryAttributeLoss"], kind="loss"
        )
        d.line([(x, head[2]), (x, bce[3])], colour=LOSS)
        d.text(x + 0.1, (head[2] + bce[3]) / 2, name, ha="left", color=LOSS)

    d.text(
        XC,
        r_total,
        "L = L_xent + L_wrt + λ_cent·L_cent + λ_BCE·L_BCE + λ_PMI·L_PMI   (Eq. 19)",
        size=BODY_SIZE,
        fontweight="bold",
    )
    d.text(
        XC,
        r_total - 0.28,
        "defaults: λ_cent 0.0005, λ_BCE 1.5 ('swapped' reading), λ_PMI 0.005 → 0.01; "
        "L_BCE is one mean over both heads",
        size=SMALL_SIZE,
    )
    return d


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        help="PNG (or .svg) to write (default docs/images/architecture.png)",
    )
    parser.add_argument("--no-svg", action="store_true", help="write the PNG only")
    parser.add_argument("--dpi", type=int, default=130, help="PNG resolution (default 130)")
    args = parser.parse_args(argv)

    check_class_names()
    diagram = draw()
    problems = diagram.check_layout()
    if problems:
        raise SystemExit("layout problems:\n  " + "\n  ".join(problems))
    out = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    written = []
    if out.endswith(".svg"):
        diagram.fig.savefig(out, format="svg", metadata={"Date": None})
        written.append(out)
    else:
        diagram.fig.savefig(out, dpi=args.dpi, metadata={"Software": None})
        written.append(out)
        if not args.no_svg:
            svg = os.path.splitext(out)[0] + ".svg"
            diagram.fig.savefig(svg, format="svg", metadata={"Date": None})
            written.append(svg)
    plt.close(diagram.fig)
    for path in written:
        print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
