"""torchvision / timm CNNs (ResNet-50/152, Inception-ResNet-v2), with features from any named layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..progress import CancelFlag, ProgressCallback, never_cancelled, no_progress
from . import download as downloads
from .base import IMAGENET_MEAN, IMAGENET_STD, TorchExtractor, weights_file_tag


@dataclass(frozen=True)
class CnnSpec:
    display_name: str
    library: str  # "torchvision" | "timm"
    architecture: str
    dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    url: str
    filename: str  # name in the weights cache
    sha256_prefix: str | None
    licence: str
    description: str


CATALOGUE: dict[str, CnnSpec] = {
    "resnet50": CnnSpec(
        "ResNet-50 (ImageNet)",
        "torchvision",
        "resnet50",
        2048,
        224,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        "resnet50-11ad3fa6.pth",
        "11ad3fa6",  # torchvision names its files by the sha256 prefix
        "BSD-3-Clause",
        "Classic ImageNet CNN (torchvision IMAGENET1K_V2 weights); layer= picks an intermediate layer. Download about 98 MB.",
    ),
    "resnet152": CnnSpec(
        "ResNet-152 (ImageNet)",
        "torchvision",
        "resnet152",
        2048,
        224,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "https://download.pytorch.org/models/resnet152-f82ba261.pth",
        "resnet152-f82ba261.pth",
        "f82ba261",
        "BSD-3-Clause",
        "Deeper ResNet, slower, somewhat richer features (torchvision IMAGENET1K_V2 weights). Download about 230 MB.",
    ),
    "inception-resnet-v2": CnnSpec(
        "Inception-ResNet-v2 (ImageNet)",
        "timm",
        "inception_resnet_v2",
        1536,
        299,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        "https://huggingface.co/timm/inception_resnet_v2.tf_in1k/resolve/main/model.safetensors",
        "inception_resnet_v2.tf_in1k.safetensors",
        None,
        "Apache-2.0",
        "Inception-ResNet-v2 (timm tf_in1k weights), 299 px input. Download about 224 MB.",
    ),
}


def needs_download(model_id: str) -> bool:
    """True while the weights for model_id are not yet in the user cache."""
    return downloads.cached_weights(CATALOGUE[model_id].filename) is None


def build_network(model_id: str) -> Any:
    """The architecture with random weights (no download)."""
    spec = CATALOGUE[model_id]
    if spec.library == "torchvision":
        import torchvision

        return getattr(torchvision.models, spec.architecture)(weights=None)
    import timm

    return timm.create_model(spec.architecture, pretrained=False)


def load_state_dict_file(path: str) -> dict:
    """A state dict from .safetensors or a torch file (weights_only), unwrapping common checkpoint shapes."""
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not contain a state dict")
    # DataParallel checkpoints prefix every key with "module."
    return {k.removeprefix("module."): v for k, v in state.items()}


def create(
    model_id: str,
    *,
    device: str = "auto",
    weights_path: str | None = None,
    layer: str | None = None,
    input_size: int | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> CnnExtractor:
    """Build a CNN extractor from a local weights file, the cache, or a download."""
    spec = CATALOGUE[model_id]
    if weights_path is None:
        path = downloads.download(
            spec.url,
            spec.filename,
            sha256_prefix=spec.sha256_prefix,
            on_progress=on_progress,
            cancelled=cancelled,
        )
        weights_path = str(path)
        tag = "imagenet"
    else:
        tag = f"file={weights_file_tag(weights_path)}"
    network = build_network(model_id)
    try:
        network.load_state_dict(load_state_dict_file(weights_path), strict=True)
    except Exception as error:  # unreadable, pickled objects refused by weights_only, wrong keys/shapes
        raise ValueError(f"{weights_path} does not hold {spec.architecture} weights: {error}") from error
    return CnnExtractor(network, model_id, device=device, layer=layer, input_size=input_size, weights_tag=tag)


class _Stop(Exception):
    """Raised by a layer hook to skip the rest of the network once the wanted layer has run."""


class LayerTap:
    """Runs a network up to one named module and returns that module's output, global-average pooled."""

    def __init__(self, network: Any, layer: str) -> None:
        modules = dict(network.named_modules())
        if layer not in modules or not layer:
            examples = ", ".join(name for name, _ in network.named_children())
            raise ValueError(f"the network has no layer named {layer!r}; top-level layers: {examples}")
        self.network, self.layer = network, layer
        self._captured: Any = None
        modules[layer].register_forward_hook(self._hook)

    def _hook(self, _module: Any, _inputs: Any, output: Any) -> None:
        self._captured = output
        raise _Stop()

    def __call__(self, x: Any) -> Any:
        self._captured = None
        try:
            self.network(x)
        except _Stop:
            pass
        out = self._captured
        self._captured = None
        if out is None:
            raise RuntimeError(f"layer {self.layer!r} was never reached in the forward pass")
        return global_pool(out)


def global_pool(output: Any) -> Any:
    """[n, C, H, W] -> [n, C] by averaging; token sequences [n, L, C] -> [n, C]; vectors pass through."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.ndim == 4:
        return output.mean(dim=(2, 3))
    if output.ndim == 3:
        return output.mean(dim=1)
    return output.flatten(1)


def pooled_forward(network: Any) -> Any:
    """The network's own global-pooled penultimate features (torchvision or timm)."""
    if hasattr(network, "forward_head"):  # timm
        return lambda x: network.forward_head(network.forward_features(x), pre_logits=True)
    return LayerTap(network, "avgpool")  # torchvision ResNets pool in `avgpool` before `fc`


def probe_dim(fn: Any, size: int) -> int:
    """Feature width of fn, measured with one blank image (cheap; avoids per-layer bookkeeping)."""
    import torch

    with torch.inference_mode():
        return int(fn(torch.zeros(1, 3, size, size)).shape[1])


class CnnExtractor(TorchExtractor):
    """A torchvision/timm classifier used as a feature extractor (pooled penultimate or any named layer)."""

    needs_download = False  # by the time it exists the weights are local

    def __init__(
        self,
        network: Any,
        model_id: str,
        *,
        device: str = "auto",
        layer: str | None = None,
        input_size: int | None = None,
        weights_tag: str = "imagenet",
    ) -> None:
        spec = CATALOGUE[model_id]
        self.licence = spec.licence
        self.layer = layer
        network.eval()
        forward = LayerTap(network, layer) if layer else pooled_forward(network)
        size = int(input_size or spec.input_size)
        dim = probe_dim(forward, size) if layer else spec.dim
        key = f"{model_id}@{size}/{weights_tag}" + (f"/layer={layer}" if layer else "")
        display = spec.display_name.split(" (")[0] + (f" [{layer}]" if layer else "")
        super().__init__(
            network,
            id=model_id,
            display_name=display,
            input_size=size,
            dim=dim,
            device=device,
            mean=spec.mean,
            std=spec.std,
            cache_key=key,
        )
        self._forward_fn = forward

    def _forward(self, x: Any) -> Any:
        return self._forward_fn(x)
