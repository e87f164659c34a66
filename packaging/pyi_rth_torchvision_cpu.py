"""PyInstaller runtime hook: let PyPI's torchvision import on the CPU-only torch of the CPU bundle.

PyPI has no CPU build of torchvision; its wheel's compiled ops (_C) link against CUDA torch libraries, so
on CPU torch they fail to load, and torchvision 0.28 then dies at import because it registers fake kernels
for `torchvision::nms` / `qnms` without checking that the ops exist. timm imports torchvision, so the
model would not load. When (and only when) torchvision's ops cannot load, this declares those two
operator schemas (no kernels: detection ops stay unavailable, which this app never calls) just before the
first `import torchvision`. Nothing is imported at startup, so the window still shows fast.
"""

import importlib.abc
import importlib.util
import os
import sys


def _declare_missing_torchvision_ops(package_dir):
    import torch

    ops = [name for name in os.listdir(package_dir) if name.startswith("_C.") or name == "_C.pyd"]
    for name in ops:
        try:
            torch.ops.load_library(os.path.join(package_dir, name))
            return  # torchvision's own ops loaded (a CUDA bundle, or a CPU build of torchvision)
        except OSError:
            pass
    for op in ("nms", "qnms"):
        torch.library.define(
            f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
        )


class _TorchvisionOpsFinder(importlib.abc.MetaPathFinder):
    """Runs once, at the first `import torchvision`, then steps aside for the real finders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torchvision")
        if spec is not None and spec.submodule_search_locations:
            _declare_missing_torchvision_ops(list(spec.submodule_search_locations)[0])
        return spec


sys.meta_path.insert(0, _TorchvisionOpsFinder())
