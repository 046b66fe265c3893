"""Import ImageNet ResNet-50 weights into `AGWResNet` from local files.

Three formats are read, all from local files (nothing is downloaded):

* a torchvision `resnet50` state dict saved with `torch.save(model.state_dict(), path)`
  (`.pth` / `.pt`; needs torch: `pip install "keras-asanet[torch]"`);
* the same tensors in a `.safetensors` file (needs only the `safetensors` package);
* the `keras.applications.ResNet50` weights file (`.h5` / `.hdf5`, the file Keras downloads,
  or a whole model saved with `model.save("x.h5")`), read with h5py.

Every format is first turned into torchvision's names and layout (`conv1.weight` as
`(out, in, kh, kw)`, `layer1.0.bn1.running_mean`, `layer1.0.downsample.0.weight`, ...), then
matched name by name against the backbone. Keys `fc.*` (the ImageNet classifier) and
`*.num_batches_tracked` are ignored, and so is `layer4.*` when the backbone has no ID branch.
The non-local blocks are not part of ImageNet ResNets and keep their initialisation; keys in
AGW's naming (`NL_2.0.g.weight`, `NL_3.1.W.1.running_var`, ...) are loaded when present.

About the Keras weights: `keras.applications.ResNet50` is ResNet **v1** (the stride of a
down-sampling block sits in its first 1x1 convolution), while `AGWResNet` defaults to
torchvision's v1.5 (stride in the 3x3 convolution). The tensors have the same shapes, so they
load either way, but the features are only identical with `AGWResNet(stride_in_1x1=True)`.
Those weights were also trained on Caffe-preprocessed input (BGR, mean subtracted, no scaling):
use `AGWResNet(normalization="caffe")` with them. Keras' convolutions have biases and its batch
norms use epsilon 1.001e-5; both are folded exactly into the batch-norm statistics
(`running_mean -= bias`, `running_var += 1.001e-5 - bn_epsilon`).
"""

import os
import re

import numpy as np

from keras_asanet.backbones.agw_resnet import AGWResNet

_TORCH_EXTENSIONS = (".pth", ".pt", ".bin", ".ckpt", ".tar")
_SAFETENSORS_EXTENSIONS = (".safetensors",)
_H5_EXTENSIONS = (".h5", ".hdf5")
_EXPECTED = (
    "a local torchvision resnet50 state dict (.pth/.pt), the same tensors as .safetensors, or "
    "the keras.applications ResNet50 weights file (.h5)"
)
_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var")
_LIST_LIMIT = 20


# ---------------------------------------------------------------------------------------------
# Reading files into torchvision-named numpy arrays


def _read_torch(path):
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"Reading {path!r} (a PyTorch state dict) needs torch. Install it with "
            '`pip install "keras-asanet[torch]"` (CPU wheel), or convert the file to '
            ".safetensors, which needs only the `safetensors` package."
        ) from error
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have several types across torch versions
        raise ValueError(
            f"Could not read {path!r} with torch.load(weights_only=True): {error}. Expected a "
            "state dict saved with `torch.save(model.state_dict(), path)`."
        ) from error
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(
            f"{path!r} does not hold a state dict of tensors (found {type(obj).__name__}); "
            "expected a file saved with `torch.save(model.state_dict(), path)`."
        )
    arrays = {}
    for name, tensor in obj.items():
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.float()
        arrays[name] = tensor.numpy()
    return arrays


def _read_safetensors(path):
    try:
        from safetensors.numpy import load_file
    except ImportError as error:
        raise ImportError(
            f"Reading {path!r} needs the `safetensors` package: `pip install safetensors` "
            '(included in `pip install "keras-asanet[torch]"`).'
        ) from error
    return dict(load_file(path))


_KERAS_BN_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
_KERAS_BLOCK = re.compile(r"^conv(\d)_block(\d+)_(\d)_(conv|bn)$")


def _keras_layer_to_torch(layer_name):
    """`conv2_block1_1_conv` -> (`layer1.0.conv1`, "conv"); None when not a ResNet layer."""
    if layer_name == "conv1_conv":
        return "conv1", "conv"
    if layer_name == "conv1_bn":
        return "bn1", "bn"
    if layer_name in ("predictions", "probs", "fc1000"):
        return "fc", "dense"
    match = _KERAS_BLOCK.match(layer_name)
    if match is None:
        return None
    stage, block, index, kind = match.groups()
    prefix = f"layer{int(stage) - 1}.{int(block) - 1}"
    if index == "0":
        return f"{prefix}.downsample.{0 if kind == 'conv' else 1}", kind
    return f"{prefix}.{kind}{index}", kind


def _conv_bn_partner(conv_name):
    """The torchvision name of the batch norm that follows convolution `conv_name`."""
    if conv_name == "conv1":
        return "bn1"
    if conv_name.endswith("downsample.0"):
        return conv_name[: -len("0")] + "1"
    head, _, last = conv_name.rpartition(".")
    return f"{head}.bn{last[len('conv') :]}"


def _read_h5(path, bn_epsilon, h5_bn_epsilon):
    import h5py

    arrays = {}
    sources = {}  # torchvision name -> "keras_layer/weight", for error messages
    conv_biases = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layers" in root and "vars" in root and "layer_names" not in root.attrs:
            raise ValueError(
                f"{path!r} is a Keras 3 `.weights.h5` file, which stores layers by class-based "
                "names (conv2d_12, ...) that cannot be matched reliably. Expected "
                "the keras.applications ResNet50 weights file or a model saved with "
                '`model.save("resnet50.h5")`.'
            )
        if "layer_names" in root.attrs:
            layer_names = [
                n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]
            ]
        else:
            layer_names = list(root.keys())
        for layer_name in layer_names:
            if layer_name not in root:
                continue
            group = root[layer_name]
            datasets = []
            if "weight_names" in group.attrs:
                for weight_name in group.attrs["weight_names"]:
                    weight_name = (
                        weight_name.decode() if isinstance(weight_name, bytes) else weight_name
                    )
                    datasets.append((weight_name, np.asarray(group[weight_name])))
            else:
                group.visititems(
                    lambda name, obj, out=datasets: (
                        out.append((name, np.asarray(obj)))
                        if isinstance(obj, h5py.Dataset)
                        else None
                    )
                )
            if not datasets:
                continue
            mapped = _keras_layer_to_torch(layer_name)
            for weight_name, value in datasets:
                short = weight_name.rsplit("/", 1)[-1].split(":")[0]
                source = f"{layer_name}/{short}"
                torch_name, kind = mapped if mapped is not None else (None, None)
                if kind == "conv" and short == "kernel":
                    name = f"{torch_name}.weight"
                    value = np.transpose(value, (3, 2, 0, 1)) if value.ndim == 4 else value
                elif kind == "conv" and short == "bias":
                    conv_biases[torch_name] = value
                    sources[f"{torch_name}.bias"] = source
                    continue
                elif kind == "dense" and short in ("kernel", "bias"):
                    name = f"{torch_name}.{'weight' if short == 'kernel' else 'bias'}"
                    value = np.transpose(value) if short == "kernel" else value
                elif kind == "bn" and short in _KERAS_BN_NAMES:
                    name = f"{torch_name}.{_KERAS_BN_NAMES[short]}"
                else:
                    name = f"h5:{source}"
                arrays[name] = value
                sources[name] = source
    # Fold the conv biases and Keras' epsilon into the batch-norm statistics (exact).
    for conv_name, bias in conv_biases.items():
        mean_name = f"{_conv_bn_partner(conv_name)}.running_mean"
        if mean_name in arrays and arrays[mean_name].shape == bias.shape:
            arrays[mean_name] = arrays[mean_name] - bias
        else:
            arrays[f"{conv_name}.bias"] = bias
    if h5_bn_epsilon is not None:
        for name in list(arrays):
            if name.endswith(".running_var"):
                arrays[name] = arrays[name] + (float(h5_bn_epsilon) - float(bn_epsilon))
    return arrays, sources


def _read_file(path, prefix, bn_epsilon, h5_bn_epsilon):
    """`(arrays, dropped, sources)`; see `read_resnet_state_dict`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file {path!r} does not exist; expected {_EXPECTED}.")
    lower = path.lower()
    sources = {}
    if lower.endswith(_SAFETENSORS_EXTENSIONS):
        arrays = _read_safetensors(path)
    elif lower.endswith(_H5_EXTENSIONS):
        arrays, sources = _read_h5(path, bn_epsilon, h5_bn_epsilon)
    elif lower.endswith(_TORCH_EXTENSIONS):
        arrays = _read_torch(path)
    else:
        raise ValueError(
            f"Unsupported weights file {path!r}: expected {_EXPECTED} (extensions "
            f"{_TORCH_EXTENSIONS + _SAFETENSORS_EXTENSIONS + _H5_EXTENSIONS})."
        )
    module = "module."
    arrays = {(k[len(module) :] if k.startswith(module) else k): v for k, v in arrays.items()}
    dropped = []
    if prefix:
        selected = {}
        for name, value in arrays.items():
            if name.startswith(prefix):
                selected[name[len(prefix) :]] = value
            else:
                dropped.append(name)
        arrays = selected
    return arrays, sorted(dropped), sources


def read_resnet_state_dict(path, prefix=None, bn_epsilon=1e-5, h5_bn_epsilon=1.001e-5):
    """Reads a ResNet weights file into torchvision-named numpy arrays.

    Args:
        path: a local `.pth`/`.pt`, `.safetensors` or Keras `.h5` file.
        prefix: optional key prefix to select and strip (e.g. `"base."` for an AGW
            checkpoint). A leading `"module."` (DataParallel) is always stripped.
        bn_epsilon: the epsilon of the batch norms the weights are meant for (only used to
            fold Keras' epsilon).
        h5_bn_epsilon: the epsilon of the batch norms in a Keras `.h5` file
            (`keras.applications`: 1.001e-5), folded into `running_var`; `None` to skip.

    Returns:
        `(arrays, dropped)`: a dict `name -> np.ndarray` in torchvision layout (kernels
        `(out, in, kh, kw)`), and the sorted list of keys dropped because they lack `prefix`.
        Keras layers that are not ResNet-50 layers appear as `"h5:<layer>/<weight>"`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the extension is not supported or the file is not a state dict.
        ImportError: torch (for `.pth`) or safetensors is not installed.
    """
    arrays, dropped, _ = _read_file(path, prefix, bn_epsilon, h5_bn_epsilon)
    return arrays, dropped


# ---------------------------------------------------------------------------------------------
# Matching against the backbone


def _conv_targets(targets, name, conv):
    targets[f"{name}.weight"] = (conv.kernel, "conv")
    if conv.use_bias:
        targets[f"{name}.bias"] = (conv.bias, "vector")


def _bn_targets(targets, name, bn):
    for suffix, variable in zip(
        _BN_SUFFIXES, (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
    ):
        targets[f"{name}.{suffix}"] = (variable, "vector")


def weight_targets(backbone):
    """The backbone's variables under torchvision (and AGW) names.

    Args:
        backbone: a built `AGWResNet`.

    Returns:
        `(targets, optional)`: a dict `torch_name -> (variable, kind)` with kind `"conv"`
        (stored `(kh, kw, in, out)`, torchvision `(out, in, kh, kw)`) or `"vector"`, and the
        set of names that may be absent from a file (the non-local blocks, `NL_k.i.*`).
    """
    targets = {}
    optional = set()
    _conv_targets(targets, "conv1", backbone.conv1)
    _bn_targets(targets, "bn1", backbone.bn1)
    for s, stage in enumerate(backbone.stages, start=1):
        for j, block in enumerate(stage.blocks):
            prefix = f"layer{s}.{j}"
            for k in (1, 2, 3):
                _conv_targets(targets, f"{prefix}.conv{k}", getattr(block, f"conv{k}"))
                _bn_targets(targets, f"{prefix}.bn{k}", getattr(block, f"bn{k}"))
            if block.has_projection:
                _conv_targets(targets, f"{prefix}.downsample.0", block.shortcut_conv)
                _bn_targets(targets, f"{prefix}.downsample.1", block.shortcut_bn)
        for k, non_local in enumerate(stage.non_local_blocks):
            nl_targets = {}
            prefix = f"NL_{s}.{k}"
            for part in ("g", "theta", "phi"):
                _conv_targets(nl_targets, f"{prefix}.{part}", getattr(non_local, part))
            _conv_targets(nl_targets, f"{prefix}.W.0", non_local.w_conv)
            _bn_targets(nl_targets, f"{prefix}.W.1", non_local.w_bn)
            targets.update(nl_targets)
            optional.update(nl_targets)
    return targets, optional


def _torch_shape(variable, kind):
    shape = tuple(variable.shape)
    if kind == "conv":
        return (shape[3], shape[2], shape[0], shape[1])
    return shape


def _is_ignorable(name, backbone):
    if name.endswith("num_batches_tracked") or name.startswith("fc."):
        return True
    return backbone.id_branch is None and name.startswith(("layer4.", "NL_4."))


def _source(sources, name):
    return f" [h5 {sources[name]}]" if name in sources else ""


def _format_list(title, items):
    lines = [f"  {title} ({len(items)}):"]
    lines += [f"    {item}" for item in items[:_LIST_LIMIT]]
    if len(items) > _LIST_LIMIT:
        lines.append(f"    ... and {len(items) - _LIST_LIMIT} more")
    return lines


def load_resnet50_weights(backbone, path, strict=True, prefix=None, h5_bn_epsilon=1.001e-5):
    """Loads ImageNet ResNet-50 weights from a local file into an `AGWResNet`, name by name.

    See the module docstring for the formats (torchvision `.pth`/`.pt`, `.safetensors`,
    `keras.applications` `.h5`) and the v1/v1.5 note for Keras weights. The stem, layer1-3 and
    the ID branch (layer4) are loaded; the classifier is ignored; non-local blocks keep their
    initialisation unless the file has AGW-named `NL_*` tensors. The backbone is built first if
    it is not yet. Works for any `AGWResNet` configuration whose tensor shapes match the file.

    Args:
        backbone: an `AGWResNet`.
        path: the weights file (str or path-like).
        strict: bool. `True` (default): any backbone tensor missing from the file, or any file
            tensor without a place in the backbone, is an error. `False`: those are skipped
            and returned. Mis-shaped tensors are always an error.
        prefix: optional key prefix to select and strip, e.g. `"base."` for an AGW
            checkpoint; a leading `"module."` is always stripped.
        h5_bn_epsilon: batch-norm epsilon of a Keras `.h5` file (folded exactly into
            `running_var`). Defaults to 1.001e-5 (`keras.applications`).

    Returns:
        A dict with sorted lists of torchvision names: `"loaded"`, `"missing"` (backbone
        tensors kept at their initialisation), `"unexpected"` (file tensors not used) and
        `"ignored"` (classifier, `num_batches_tracked`, layer4 without an ID branch, keys
        outside `prefix`).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unsupported or unreadable file; tensors with the wrong shape; missing or
            unexpected tensors when `strict`. The message lists names and shapes.
        ImportError: a `.pth` file without torch installed (install `keras-asanet[torch]`).

    Example:

    >>> backbone = AGWResNet()
    >>> report = load_resnet50_weights(backbone, "resnet50-0676ba61.pth")  # doctest: +SKIP
    >>> len(report["loaded"])  # doctest: +SKIP
    265
    """
    if not isinstance(backbone, AGWResNet):
        raise ValueError(
            f"`backbone` must be an AGWResNet; received backbone={type(backbone).__name__}."
        )
    path = os.fspath(path)
    arrays, dropped, sources = _read_file(path, prefix, backbone.bn_epsilon, h5_bn_epsilon)
    if not backbone.built:
        shape = [None, None, None, None]
        shape[backbone._channel_axis] = 3
        backbone.build(tuple(shape))
    targets, optional = weight_targets(backbone)

    ignored = sorted(
        dropped + [n for n in arrays if n not in targets and _is_ignorable(n, backbone)]
    )
    missing = sorted(n for n in targets if n not in arrays and n not in optional)
    unexpected = sorted(n for n in arrays if n not in targets and not _is_ignorable(n, backbone))
    misshaped = []
    for name, value in arrays.items():
        if name in targets:
            variable, kind = targets[name]
            expected = _torch_shape(variable, kind)
            if tuple(value.shape) != expected:
                misshaped.append(
                    f"{name}{_source(sources, name)}: file {tuple(value.shape)}, "
                    f"expected {expected}"
                )
    misshaped.sort()
    if misshaped or (strict and (missing or unexpected)):
        lines = [
            f"Cannot load {path!r} into {backbone.name} (block_counts={backbone.block_counts}, "
            f"width={backbone.width}, non_local={backbone.non_local}, "
            f"include_layer4={backbone.include_layer4}); names and shapes are torchvision's "
            "(conv kernels as (out, in, kh, kw)):"
        ]
        if misshaped:
            lines += _format_list("tensors with the wrong shape", misshaped)
        if strict and missing:
            lines += _format_list(
                "tensors missing from the file",
                [f"{n} {_torch_shape(*targets[n])}" for n in missing],
            )
        if strict and unexpected:
            lines += _format_list(
                "unexpected tensors in the file",
                [f"{n}{_source(sources, n)} {tuple(arrays[n].shape)}" for n in unexpected],
            )
        if strict and (missing or unexpected):
            lines.append("  (pass strict=False to load the matching tensors only)")
        raise ValueError("\n".join(lines))

    loaded = []
    for name, value in arrays.items():
        if name not in targets:
            continue
        variable, kind = targets[name]
        if kind == "conv":
            value = np.transpose(value, (2, 3, 1, 0))
        variable.assign(np.asarray(value, dtype=variable.dtype))
        loaded.append(name)
    return {
        "loaded": sorted(loaded),
        "missing": missing,
        "unexpected": unexpected,
        "ignored": ignored,
    }
