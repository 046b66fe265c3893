"""Pictures of datasets, training runs and trained models (matplotlib, Agg canvas).

Every figure function returns a `matplotlib.figure.Figure` and writes it as PNG when given
`path=`: dataset contact sheets, training curves, CMC curves, ASRE mask overlays (paper
Fig. 8), ranked retrieval grids (Fig. 6), t-SNE of the features (Fig. 7), attribute
confusion matrices, and Grad-CAM of the identity score on every backend.
`write_visual_report` writes all of them and an `index.html` (`scripts/visualize.py`).

Nothing here is imported by `import keras_asanet`; Keras, the evaluation code and
scikit-learn (t-SNE only) are imported when a function needs them.
"""

from keras_asanet.visualization.attribute_confusion import (
    AttributeConfusion,
    attribute_confusion,
    plot_attribute_confusion,
)
from keras_asanet.visualization.cmc_curve import plot_cmc_curves
from keras_asanet.visualization.contact_sheet import tracklet_contact_sheet
from keras_asanet.visualization.mask_overlay import (
    mask_extent,
    normalise_mask,
    plot_mask_overlay,
    plot_model_masks,
    plot_model_masks_of,
)
from keras_asanet.visualization.model_outputs import EvaluationOutputs, evaluation_outputs
from keras_asanet.visualization.report import (
    VisualReport,
    training_history,
    write_visual_report,
)
from keras_asanet.visualization.retrieval_grid import (
    Retrieval,
    pick_queries,
    plot_model_retrieval,
    plot_retrieval_grid,
    rank_gallery,
)
from keras_asanet.visualization.saliency import (
    GradCAM,
    grad_cam,
    grad_cam_maps,
    plot_model_grad_cam,
    plot_model_grad_cams,
)
from keras_asanet.visualization.tf_keras_vis_cams import tf_keras_vis_cam
from keras_asanet.visualization.training_plots import plot_cmc, plot_training_curves
from keras_asanet.visualization.tsne import plot_tsne, tracklet_labels, tsne_embedding

__all__ = [
    "tf_keras_vis_cam",
    "AttributeConfusion",
    "EvaluationOutputs",
    "GradCAM",
    "Retrieval",
    "VisualReport",
    "attribute_confusion",
    "evaluation_outputs",
    "grad_cam",
    "grad_cam_maps",
    "mask_extent",
    "normalise_mask",
    "pick_queries",
    "plot_attribute_confusion",
    "plot_cmc",
    "plot_cmc_curves",
    "plot_mask_overlay",
    "plot_model_grad_cam",
    "plot_model_grad_cams",
    "plot_model_masks",
    "plot_model_masks_of",
    "plot_model_retrieval",
    "plot_retrieval_grid",
    "plot_training_curves",
    "plot_tsne",
    "rank_gallery",
    "tracklet_contact_sheet",
    "training_history",
    "tsne_embedding",
    "tracklet_labels",
    "write_visual_report",
]
