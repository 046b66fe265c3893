"""Pictures of datasets and results (contact sheets, training curves, CMC)."""

from keras_asanet.visualization.contact_sheet import tracklet_contact_sheet
from keras_asanet.visualization.training_plots import plot_cmc, plot_training_curves

__all__ = ["plot_cmc", "plot_training_curves", "tracklet_contact_sheet"]
