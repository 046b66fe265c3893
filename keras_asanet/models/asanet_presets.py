"""Named ASA-Net architectures: the paper's four variants and a CPU-sized one."""

# The four paper variants share ResNet-50 at full width; they differ in the fusion strategy
# (§III-D) and whether the PMI triplet loss is on (§III-C), as in Tables I-III and V.
_RESNET50 = {"block_counts": (3, 4, 6, 3), "width": 64, "non_local": (0, 2, 3, 0)}

ASANET_PRESETS = {
    "asanet_a": {
        "description": "ASA-Net, fusion strategy (a), without the PMI triplet loss.",
        "config": {"backbone": _RESNET50, "fusion": "a", "pmi": False},
    },
    "asanet_b": {
        "description": "ASA-Net, fusion strategy (b), without the PMI triplet loss "
        "(the paper's best MARS mAP, 86.6).",
        "config": {"backbone": _RESNET50, "fusion": "b", "pmi": False},
    },
    "asanet_a_pmi": {
        "description": "ASA-Net, fusion strategy (a), with the PMI triplet loss.",
        "config": {"backbone": _RESNET50, "fusion": "a", "pmi": True},
    },
    "asanet_b_pmi": {
        "description": "ASA-Net, fusion strategy (b), with the PMI triplet loss.",
        "config": {"backbone": _RESNET50, "fusion": "b", "pmi": True},
    },
    "asanet_tiny": {
        "description": "A narrow ASA-Net (ResNet width 8, one block per stage, one non-local "
        "block in layer2 and layer3) for CPU tests, tutorials and the synthetic dataset.",
        "config": {
            "backbone": {"block_counts": (1, 1, 1, 1), "width": 8, "non_local": (0, 1, 1, 0)},
            "attribute_branch_blocks": 1,
            "branch_dim": 32,
            "fusion": "a",
            "pmi": True,
        },
    },
}
