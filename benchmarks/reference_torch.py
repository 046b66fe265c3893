"""A plain PyTorch ASA-Net: the yardstick of `scripts/benchmark.py train | infer`.

Eager `nn.Module`s, channels-first, written the way a PyTorch re-ID codebase (torchreid,
fast-reid, AGW) writes them, independently of the Keras code: torchvision's ResNet-50 v1.5
layout with AGW's non-local blocks and last stride 1, the two attribute branches, the three
1x1 identity reductions, the two ASRE modules (Eq. 8-10), GeM / average pooling with a
temporal mean, the attribute heads, fusion (a) or (b), the BNNeck, and the five losses of
Eq. 19 (label-smoothed cross-entropy, weighted-regularisation triplet, centre, multi-binary
attribute BCE, PMI triplet) with `torch.nn.functional`, trained by Adam with PyTorch's L2
weight decay for the network and a plain SGD for the centres whose gradient is divided by
lambda_cent (AGW). It imports torch only (no torchvision, no Keras).

The architecture numbers (`PRESETS`) are written here again on purpose; the benchmark and its
test assert that the parameter count equals the Keras `ASANet.from_preset(...)` one, and
`load_keras_weights` copies a Keras model's weights in by variable path so the two can be
compared output for output.

This is a benchmark reference, not part of the package.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_RESNET50 = {"block_counts": (3, 4, 6, 3), "width": 64, "non_local": (0, 2, 3, 0)}

#: The architectures of the Keras presets (see keras_asanet/models/asanet_presets.py).
PRESETS = {
    "asanet_a": {"backbone": _RESNET50, "fusion": "a", "pmi": False},
    "asanet_b": {"backbone": _RESNET50, "fusion": "b", "pmi": False},
    "asanet_a_pmi": {"backbone": _RESNET50, "fusion": "a", "pmi": True},
    "asanet_b_pmi": {"backbone": _RESNET50, "fusion": "b", "pmi": True},
    "asanet_tiny": {
        "backbone": {"block_counts": (1, 1, 1, 1), "width": 8, "non_local": (0, 1, 1, 0)},
        "attribute_branch_blocks": 1,
        "branch_dim": 32,
        "fusion": "a",
        "pmi": True,
    },
}

#: MARS attribute widths (ID-relevant 9 + 10 + 4 + 9, ID-irrelevant motion 5 + pose 6).
MARS_ATTRIBUTES = (32, 11)

_MEAN = (0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0)
_STD = (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)


def _bn(channels, zero=False):
    bn = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
    if zero:
        nn.init.zeros_(bn.weight)
    return bn


def _conv(cin, cout, k=1, stride=1, bias=False):
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride in the 3x3 convolution)."""

    def __init__(self, cin, planes, stride=1, expansion=4):
        super().__init__()
        cout = planes * expansion
        self.conv1, self.bn1 = _conv(cin, planes), _bn(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride), _bn(planes)
        self.conv3, self.bn3 = _conv(planes, cout), _bn(cout)
        self.shortcut_conv = self.shortcut_bn = None
        if stride != 1 or cin != cout:
            self.shortcut_conv, self.shortcut_bn = _conv(cin, cout, 1, stride), _bn(cout)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        s = x if self.shortcut_conv is None else self.shortcut_bn(self.shortcut_conv(x))
        return F.relu(y + s)


class NonLocal(nn.Module):
    """AGW's dot-product non-local block, inner width C / 2, identity at initialisation."""

    def __init__(self, channels):
        super().__init__()
        inter = channels // 2
        self.g = nn.Conv2d(channels, inter, 1)
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.w_conv = nn.Conv2d(inter, channels, 1)
        self.w_bn = _bn(channels, zero=True)
        nn.init.zeros_(self.w_bn.bias)

    def forward(self, x):
        n, _, h, w = x.shape
        g = self.g(x).flatten(2).transpose(1, 2)
        theta = self.theta(x).flatten(2).transpose(1, 2)
        phi = self.phi(x).flatten(2)
        f = torch.bmm(theta, phi) / (h * w)
        y = torch.bmm(f, g).transpose(1, 2).reshape(n, -1, h, w)
        return x + self.w_bn(self.w_conv(y))


class Stage(nn.Module):
    """`num_blocks` bottlenecks, non-local blocks after the last `num_non_local` of them."""

    def __init__(self, cin, planes, num_blocks, stride, num_non_local):
        super().__init__()
        self.order = []
        for i in range(num_blocks):
            self.add_module(f"block{i}", Bottleneck(cin, planes, stride if i == 0 else 1))
            self.order.append(f"block{i}")
            cin = planes * 4
            k = i - (num_blocks - num_non_local)
            if k >= 0:
                self.add_module(f"non_local{k}", NonLocal(cin))
                self.order.append(f"non_local{k}")

    def forward(self, x):
        for name in self.order:
            x = getattr(self, name)(x)
        return x


class Backbone(nn.Module):
    """ResNet stem + layer1-3 (`X_origin`, C channels) and layer4 with stride 1 (`X_ID`, 2C)."""

    def __init__(self, block_counts, width, non_local):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = _bn(width)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        cin = width
        for k, stride in enumerate((1, 2, 2, 1)):
            planes = width * 2**k
            stage = Stage(cin, planes, block_counts[k], stride, non_local[k])
            self.add_module(f"layer{k + 1}", stage)
            cin = planes * 4

    def backbone_map(self, x):
        x = (x - self.mean) / self.std
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2, 1)
        return self.layer3(self.layer2(self.layer1(x)))


class AttributeBranch(nn.Module):
    def __init__(self, cin, filters, num_blocks):
        super().__init__()
        self.blocks = num_blocks
        for i in range(num_blocks):
            self.add_module(f"block{i}", Bottleneck(cin if i == 0 else filters, filters // 4))

    def forward(self, x):
        for i in range(self.blocks):
            x = getattr(self, f"block{i}")(x)
        return x


class ASRE(nn.Module):
    """Eq. 8-10: cross attention from the identity map to the attribute map, a 1-channel mask."""

    def __init__(self, identity_channels, attribute_channels):
        super().__init__()
        c = identity_channels
        self.key_dim = c
        self.query_conv = nn.Conv2d(c, c, 1)
        self.key_conv = nn.Conv2d(attribute_channels, c, 1)
        self.value_conv = nn.Conv2d(attribute_channels, c, 1, bias=False)
        self.batch_norm = _bn(c)
        self.mask_conv = nn.Conv2d(c, 1, 1)
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, xi, xa):
        n, _, h, w = xi.shape
        q = F.relu(self.query_conv(xi)).flatten(2).transpose(1, 2)
        k = F.relu(self.key_conv(xa)).flatten(2)
        v = self.value_conv(xa).flatten(2).transpose(1, 2)
        a = torch.softmax(torch.bmm(q, k) / math.sqrt(self.key_dim), dim=-1)
        xv = torch.bmm(a, v).transpose(1, 2).reshape(n, -1, h, w)
        m = self.mask_conv(self.batch_norm(xv))
        return xi + self.alpha * (m * xi), m


class GeM(nn.Module):
    """Spatial GeM (trainable p, AGW) of each frame, then the mean over the T frames."""

    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.full((1,), p))
        self.eps = eps

    def forward(self, x, batch, frames):
        pooled = x.clamp(min=self.eps).pow(self.p).mean((2, 3)).pow(1.0 / self.p)
        return pooled.view(batch, frames, -1).mean(1)


class AttributeHead(nn.Module):
    """`W1(ReLU(BN(W2 f)))` (Eq. 3, 5)."""

    def __init__(self, dim, num_outputs):
        super().__init__()
        self.hidden_dense = nn.Linear(dim, dim, bias=False)
        self.batch_norm = nn.BatchNorm1d(dim, eps=1e-5, momentum=0.1)
        self.output_dense = nn.Linear(dim, num_outputs)

    def forward(self, f):
        return self.output_dense(F.relu(self.batch_norm(self.hidden_dense(f))))


class BNNeck(nn.Module):
    """BN without a learned shift (BoT / AGW) and a bias-free classifier (Eq. 16)."""

    def __init__(self, dim, num_classes):
        super().__init__()
        self.batch_norm = nn.BatchNorm1d(dim, eps=1e-5, momentum=0.1)
        self.batch_norm.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)


class Fusion(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.attribute_dense = nn.Linear(in_dim, out_dim)


class ReferenceASANet(nn.Module):
    """ASA-Net in plain PyTorch. Input: clips `(B, T, 3, H, W)`, RGB in [0, 255] (any dtype,
    uint8 included; cast and normalised inside). Training mode returns the dict of outputs
    the losses read; eval mode the BNNeck feature `(B, D)`."""

    def __init__(
        self,
        num_identities,
        num_re_attributes=MARS_ATTRIBUTES[0],
        num_ir_attributes=MARS_ATTRIBUTES[1],
        backbone=None,
        attribute_branch_blocks=3,
        branch_dim=256,
        fusion="a",
        pmi=True,
        center_loss_weight=0.0005,
        bce_weight=1.5,
        pmi_weight=0.005,
        label_smoothing=0.1,
    ):
        super().__init__()
        bb = {**_RESNET50, **(backbone or {})}
        c = 16 * bb["width"]
        attr, reduced = c // 2, c // 4
        self.fusion, self.pmi = fusion, pmi
        self.center_loss_weight, self.bce_weight = center_loss_weight, bce_weight
        self.pmi_weight, self.label_smoothing = pmi_weight, label_smoothing
        self.backbone = Backbone(bb["block_counts"], bb["width"], bb["non_local"])
        self.re_attr_branch = AttributeBranch(c, attr, attribute_branch_blocks)
        self.ir_attr_branch = AttributeBranch(c, attr, attribute_branch_blocks)
        self.f_re, self.f_ir, self.f_id = (nn.Conv2d(2 * c, reduced, 1) for _ in range(3))
        self.re_asre, self.ir_asre = ASRE(reduced, attr), ASRE(reduced, attr)
        self.pool_re_attr, self.pool_ir_attr = GeM(), GeM()
        self.w_re, self.w_ir, self.w_id = (nn.Linear(reduced, branch_dim) for _ in range(3))
        self.re_attr_head = AttributeHead(attr, num_re_attributes)
        self.ir_attr_head = AttributeHead(attr, num_ir_attributes)
        self.feature_fusion = Fusion(2 * attr, attr) if fusion == "b" else None
        final = 3 * branch_dim + attr
        self.bn_neck = BNNeck(final, num_identities)
        self.centers = nn.Parameter(torch.randn(num_identities, final))

    @classmethod
    def from_preset(cls, preset, num_identities, **kwargs):
        return cls(num_identities=num_identities, **{**PRESETS[preset], **kwargs})

    def forward(self, clips):
        b, t = clips.shape[0], clips.shape[1]
        x = clips.flatten(0, 1).float()
        x3 = self.backbone.backbone_map(x)
        x4 = self.backbone.layer4(x3)
        re_map, ir_map = self.re_attr_branch(x3), self.ir_attr_branch(x3)
        f_re_attr = self.pool_re_attr(re_map, b, t)
        f_ir_attr = self.pool_ir_attr(ir_map, b, t)

        def avg(m):
            return m.mean((2, 3)).view(b, t, -1).mean(1)

        re_id, _ = self.re_asre(self.f_re(x4), re_map)
        ir_id, _ = self.ir_asre(self.f_ir(x4), ir_map)
        f_re_id, f_ir_id = self.w_re(avg(re_id)), self.w_ir(avg(ir_id))
        f_id = self.w_id(avg(self.f_id(x4)))
        if self.fusion == "b":
            attr = self.feature_fusion.attribute_dense(torch.cat([f_re_attr, f_ir_attr], 1))
        else:
            attr = f_re_attr
        f_final = torch.cat([f_re_id, f_id, f_ir_id, attr], 1)
        feature = self.bn_neck.batch_norm(f_final)
        if not self.training:
            return feature
        return {
            "id_logits": self.bn_neck.classifier(feature),
            "f_final": f_final,
            "f_re_attr": f_re_attr,
            "f_ir_attr": f_ir_attr,
            "re_attr_logits": self.re_attr_head(f_re_attr),
            "ir_attr_logits": self.ir_attr_head(f_ir_attr),
            "feature": feature,
        }

    def losses(self, out, targets):
        """The five terms of Eq. 19 and their weighted sum (`"total"`)."""
        pids = targets["pid"].long().view(-1)
        terms = {
            "xent": cross_entropy_label_smoothing(out["id_logits"], pids, self.label_smoothing),
            "wrt": weighted_regularization_triplet(out["f_final"], pids),
            "center": center_loss(out["f_final"], pids, self.centers),
            "bce": attribute_bce(
                torch.cat([targets["re_attr"], targets["ir_attr"]], 1),
                torch.cat([out["re_attr_logits"], out["ir_attr_logits"]], 1),
                targets["attr_mask"],
            ),
        }
        total = (
            terms["xent"]
            + terms["wrt"]
            + self.center_loss_weight * terms["center"]
            + self.bce_weight * terms["bce"]
        )
        if self.pmi:
            terms["pmi"] = pmi_triplet(out["f_final"], out["f_ir_attr"], pids)
            total = total + self.pmi_weight * terms["pmi"]
        terms["total"] = total
        return terms


def trainable_parameter_count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------- losses


def cross_entropy_label_smoothing(logits, pids, epsilon=0.1):
    logp = F.log_softmax(logits.float(), dim=1)
    target = torch.full_like(logp, epsilon / logits.shape[1])
    target.scatter_add_(1, pids.view(-1, 1), torch.full_like(logp[:, :1], 1.0 - epsilon))
    return -(target * logp).sum(1).mean()


def _masked_softmax(x, mask):
    x = x.masked_fill(~mask, float("-inf"))
    shift = x.max(1, keepdim=True).values.detach().clamp_min(-1e30)
    e = torch.exp(x - shift) * mask
    return e / e.sum(1, keepdim=True).clamp_min(1e-30)


def _squared_distances(f):
    sq = (f * f).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * f @ f.t()).clamp_min(0.0)
    return d2 * (1.0 - torch.eye(len(f), device=f.device, dtype=f.dtype))


def weighted_regularization_triplet(f, pids):
    dist = _squared_distances(f.float()).clamp_min(1e-12).sqrt()
    pos = pids[:, None] == pids[None, :]
    wp, wn = _masked_softmax(dist, pos), _masked_softmax(-dist, ~pos)
    return F.softplus((dist * wp).sum(1) - (dist * wn).sum(1)).mean()


def center_loss(f, pids, centers):
    return ((f.float() - centers[pids]) ** 2).sum(1).clamp(1e-12, 1e12).mean()


def attribute_bce(targets, logits, row_mask):
    targets = targets.float()
    valid = (targets >= 0) & (row_mask.view(-1, 1) > 0)
    bce = F.binary_cross_entropy_with_logits(
        logits.float(), targets.clamp_min(0.0), reduction="none"
    )
    count = valid.sum(1)
    per_sample = (bce * valid).sum(1) / count.clamp_min(1)
    rows = (count > 0).float()
    return (per_sample * rows).sum() / rows.sum().clamp_min(1.0)


def pmi_triplet(f_final, f_ir_attr, pids):
    n = len(pids)
    partners = (pids[:, None] == pids[None, :]) & ~torch.eye(
        n, dtype=torch.bool, device=pids.device
    )
    with torch.no_grad():
        d_attr = _squared_distances(f_ir_attr.float())
        ap = d_attr.masked_fill(~partners, float("inf")).argmin(1)
        an = d_attr.masked_fill(~partners, float("-inf")).argmax(1)
    normed = F.normalize(f_final.float(), dim=1, eps=1e-6)
    d_cos = 1.0 - normed @ normed.t()
    rows = torch.arange(n, device=pids.device)
    hinge = F.relu(d_cos[rows, an] - d_cos[rows, ap])
    valid = partners.any(1).float()
    return (hinge * valid).sum() / valid.sum().clamp_min(1.0)


# ---------------------------------------------------------------------------- training


class ReferenceTrainer:
    """One training step: forward, the losses, Adam (L2 weight decay, PyTorch's) on the
    network and SGD on the centres with their gradient divided by lambda_cent (AGW)."""

    def __init__(self, model, learning_rate=3e-4, weight_decay=5e-4, center_learning_rate=0.5):
        self.model = model
        network = [p for n, p in model.named_parameters() if n != "centers" and p.requires_grad]
        self.adam = torch.optim.Adam(network, lr=learning_rate, weight_decay=weight_decay)
        self.sgd = torch.optim.SGD([model.centers], lr=center_learning_rate)

    def step(self, clips, targets):
        self.model.train()
        terms = self.model.losses(self.model(clips), targets)
        self.adam.zero_grad(set_to_none=True)
        self.sgd.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.model.centers.grad.mul_(1.0 / self.model.center_loss_weight)
        self.adam.step()
        self.sgd.step()
        return {k: v.detach() for k, v in terms.items()}


# ------------------------------------------------------------------------ Keras weights

_VARIABLE_NAMES = {
    "kernel": "weight",
    "gamma": "weight",
    "beta": "bias",
    "bias": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
    "p": "p",
    "alpha": "alpha",
}
_BACKBONE_PARTS = {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"}


def load_keras_weights(model, weights, model_name):
    """Copies a Keras `ASANet`'s weights into `model` by variable path.

    Args:
        model: a `ReferenceASANet` of the same architecture.
        weights: `{variable.path: numpy array}` of the Keras model's `weights`.
        model_name: the Keras model's name (the first part of its paths).

    Returns:
        The set of `state_dict` keys written; raises `KeyError` / `ValueError` for a path or
        shape that has no counterpart.
    """
    state = model.state_dict()
    written = set()
    for path, value in weights.items():
        parts = path.split("/")
        if parts[-1] == "pmi_weight":
            continue
        if parts[-1] == "centers":
            key = "centers"
        else:
            if parts[0] == model_name:
                parts = parts[1:]
            if parts[0] in _BACKBONE_PARTS:
                parts = ["backbone", *parts]
            key = ".".join([*parts[:-1], _VARIABLE_NAMES[parts[-1]]])
        tensor = torch.as_tensor(value)
        if tensor.ndim == 4:
            tensor = tensor.permute(3, 2, 0, 1)
        elif tensor.ndim == 2 and parts[-1] == "kernel":
            tensor = tensor.t()
        if key not in state:
            raise KeyError(f"{path} -> {key}: no such weight in the reference model")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(f"{path}: {tuple(tensor.shape)} vs {key} {tuple(state[key].shape)}")
        state[key] = tensor.to(state[key].dtype).contiguous()
        written.add(key)
    model.load_state_dict(state)
    return written
