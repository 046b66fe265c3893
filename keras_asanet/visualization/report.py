"""Every figure of the package for one trained model on one dataset, as PNG files and an
`index.html` that shows them (what `scripts/visualize.py` writes).

Features and attribute logits of the test split are extracted once (`evaluation_outputs`)
and shared by the retrieval grid, the CMC curve (beside the raw-pixels baseline), the t-SNE
and the attribute confusion; the mask overlays and Grad-CAM run the model on a few query
tracklets. A figure that cannot be made (no scikit-learn, no attribute heads, no ASRE, no
training history found) is left out and the page says why.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os

from keras_asanet.cli import DEFAULT_METRIC


@dataclasses.dataclass
class VisualReport:
    """What `write_visual_report` wrote.

    Attributes:
        output: the folder.
        figures: list of `(file name, caption)` of the PNGs written, in page order.
        notes: why figures were left out.
        index: path of `index.html`.
    """

    output: str
    figures: list
    notes: list
    index: str


def training_history(weights_path):
    """The per-epoch history of the run that saved `weights_path`: a `"history"` entry of the
    `results.json` beside it, else the newest readable checkpoint's (`checkpoints/` beside
    it, `keras_asanet.training.checkpoint.latest_state`), else `None`."""
    from keras_asanet.training.checkpoint import latest_state

    folder = os.path.dirname(os.path.abspath(weights_path))
    try:
        with open(os.path.join(folder, "results.json")) as f:
            history = json.load(f).get("history")
        if isinstance(history, dict) and history:
            return history
    except (OSError, ValueError, AttributeError):
        pass
    state, _ = latest_state(os.path.join(folder, "checkpoints"))
    history = (state or {}).get("history")
    return history if isinstance(history, dict) and history else None


def _page(title, figures, notes):
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "figure{margin:2em 0}img{max-width:100%;border:1px solid #ddd}"
        "figcaption{color:#333;margin-top:.4em}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for name, caption in figures:
        parts.append(
            f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if notes:
        parts.append("<h2>Not shown</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in notes]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_visual_report(
    model,
    dataset,
    output,
    setup="usual",
    mode="dense",
    seq_len=6,
    image_size=None,
    batch_size=32,
    num_workers=4,
    metric=DEFAULT_METRIC,
    num_queries=4,
    top_k=5,
    num_tracklets=2,
    history=None,
    title=None,
    verbose=False,
    flip=False,
):
    """Writes every figure of `keras_asanet.visualization` for `model` on `dataset`'s test
    split into `output`, and an `index.html` showing them.

    Files: `retrieval.png`, `cmc.png` (model beside raw pixels), `tsne_pose.png`,
    `tsne_motion.png`, `attributes.png`, `masks_<i>.png` and `grad_cam_<i>.png` for
    `num_tracklets` query tracklets, `curves.png` when a training history is given.

    Args:
        model: a trained `ASANet` (or any model `extract_features` accepts; the figures it
            cannot support are left out).
        dataset: a `VideoReIDDataset` (MARS, Duke, synthetic).
        output: the folder (created).
        setup, mode, seq_len, image_size, batch_size, num_workers, metric: as
            `evaluate_model`.
        num_queries, top_k: rows and columns of the retrieval grid.
        num_tracklets: query tracklets shown with their masks and Grad-CAM.
        history: a per-epoch history dict (`training_history(weights)`) for `curves.png`, or
            `None`.
        title: the page title.
        verbose: progress bars.
        flip: the flip test of the features behind the retrievals, the CMC curve and the
            t-SNE (`extract_features`), as the model's evaluation used it.

    Returns:
        A `VisualReport`.

    Example:

    >>> report = write_visual_report(model, Mars(root), "figures", seq_len=4,
    ...                              image_size=(64, 32))  # doctest: +SKIP
    """
    from keras_asanet.evaluation.asanet_evaluation import is_asanet
    from keras_asanet.evaluation.feature_extraction import resolve_image_size
    from keras_asanet.evaluation.raw_pixels import raw_pixel_baseline
    from keras_asanet.visualization.attribute_confusion import (
        attribute_confusion,
        plot_attribute_confusion,
    )
    from keras_asanet.visualization.cmc_curve import plot_cmc_curves
    from keras_asanet.visualization.mask_overlay import plot_model_masks_of
    from keras_asanet.visualization.model_outputs import evaluation_outputs
    from keras_asanet.visualization.retrieval_grid import pick_queries, plot_retrieval_grid
    from keras_asanet.visualization.saliency import plot_model_grad_cams
    from keras_asanet.visualization.training_plots import plot_training_curves
    from keras_asanet.visualization.tsne import plot_tsne, tracklet_labels, tsne_embedding

    os.makedirs(output, exist_ok=True)
    image_size = resolve_image_size(model, image_size)
    figures, notes = [], []

    def put(name, caption, draw):
        draw(os.path.join(output, name))
        figures.append((name, caption))

    outputs = evaluation_outputs(
        model,
        dataset,
        setup=setup,
        mode=mode,
        seq_len=seq_len,
        image_size=image_size,
        batch_size=batch_size,
        num_workers=num_workers,
        verbose=verbose,
        flip=flip,
    )
    protocol = outputs.protocol
    qf, gf, q_pids, g_pids, q_cams, g_cams = protocol.split(outputs.features)
    queries = pick_queries(q_pids, g_pids, q_cams, g_cams, num_queries)
    put(
        "retrieval.png",
        f"Top-{top_k} retrieval of {len(queries)} queries ({protocol.name}, {metric}"
        f"{', flip test' if flip else ''}): green "
        "frames are true matches, red false ones; cameras 1-based as in the MARS names.",
        lambda p: plot_retrieval_grid(
            protocol.query_tracklets,
            protocol.gallery_tracklets,
            query_features=qf,
            gallery_features=gf,
            metric=metric,
            queries=queries,
            top_k=top_k,
            path=p,
        ),
    )

    ranking = outputs.ranking(metric=metric)
    baseline = raw_pixel_baseline(
        protocol=protocol, mode=mode, seq_len=seq_len, metric=metric, num_workers=num_workers
    )
    put(
        "cmc.png",
        f"CMC on {protocol.describe()}, beside the raw-pixels baseline on the same protocol.",
        lambda p: plot_cmc_curves({"model": ranking, "raw pixels": baseline}, path=p),
    )

    tracklets = list(protocol.tracklets)
    schema = getattr(dataset, "attribute_schema", None)
    try:
        embedding = tsne_embedding(outputs.features)
    except ImportError as err:
        notes.append(f"t-SNE: {err}")
    else:
        pids = tracklet_labels(tracklets, "pid")
        for name in ("pose", "motion"):
            names = schema[name].class_names if schema is not None and name in schema else None
            put(
                f"tsne_{name}.png",
                f"t-SNE of the {len(tracklets)} test features, coloured by identity (left) "
                f"and by {name} (right; grey: not annotated).",
                lambda p, n=name, c=names: plot_tsne(
                    outputs.features,
                    pids,
                    tracklet_labels(tracklets, n),
                    n,
                    class_names=c,
                    embedding=embedding,
                    path=p,
                ),
            )

    if outputs.re_attr_logits is None and outputs.ir_attr_logits is None:
        notes.append("attribute confusion: the model outputs no attribute logits.")
    elif schema is None or not any(t.attributes is not None for t in tracklets):
        notes.append("attribute confusion: the test tracklets carry no attribute annotation.")
    else:
        confusions = attribute_confusion(
            schema, outputs.re_attr_logits, outputs.ir_attr_logits, tracklets
        )
        put(
            "attributes.png",
            "Attribute confusion on the annotated test tracklets (rows: true class, columns: "
            "predicted; each row normalised); titles give each attribute's accuracy.",
            lambda p: plot_attribute_confusion(confusions, path=p),
        )

    shown = [protocol.query_tracklets[q] for q in queries[: max(int(num_tracklets), 0)]]
    asanet = is_asanet(model)
    if not asanet or not (model.uses_re_asre or model.uses_ir_asre):
        notes.append("ASRE mask overlays: the model has no ASRE module.")
    elif shown:
        names = [f"masks_{i}.png" for i in range(len(shown))]
        plot_model_masks_of(
            model, shown, seq_len, image_size, paths=[os.path.join(output, n) for n in names]
        )
        for name, t in zip(names, shown):
            figures.append(
                (
                    name,
                    f"ASRE masks of both branches over {seq_len} frames of query pid "
                    f"{t.original_pid} (camera {t.camid + 1}); white: the ground-truth person "
                    "outline where the dataset has label maps.",
                )
            )
    if not asanet or not model.num_identities:
        notes.append("Grad-CAM: the model is not an ASANet with an identity classifier.")
    elif shown:
        names = [f"grad_cam_{i}.png" for i in range(len(shown))]
        plot_model_grad_cams(
            model, shown, seq_len, image_size, paths=[os.path.join(output, n) for n in names]
        )
        for name, t in zip(names, shown):
            figures.append(
                (
                    name,
                    "Grad-CAM of the highest identity logit at the backbone map (stem + "
                    f"layer1-3), query pid {t.original_pid} (camera {t.camid + 1}).",
                )
            )

    if history:
        put(
            "curves.png",
            "Training curves: loss terms (log scale) and training accuracies per epoch.",
            lambda p: plot_training_curves(history, path=p),
        )
    else:
        notes.append("training curves: no training history found beside the model.")

    title = title or f"{getattr(model, 'name', 'model')} on {protocol.name}"
    index = os.path.join(output, "index.html")
    with open(index, "w", encoding="utf-8") as f:
        f.write(_page(title, figures, notes))
    return VisualReport(output=output, figures=figures, notes=notes, index=index)
