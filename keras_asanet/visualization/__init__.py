"""Pictures of datasets and results (contact sheets, masks, rankings)."""

from keras_asanet.visualization.contact_sheet import tracklet_contact_sheet

__all__ = ["tracklet_contact_sheet"]
