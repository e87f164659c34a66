"""The default extractor (EfficientNet-Lite0), the registry and the device helpers, with the real weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.transform import rescale

from imgclust_desktop.core.models import base, device, efficientnet, registry

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def lite0():
    return registry.create("efficientnet-lite0", device="cpu")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_default_model_gives_1280_float32_features(lite0):
    assert registry.DEFAULT_MODEL == "efficientnet-lite0"
    assert isinstance(lite0, base.Extractor)
    features = lite0.embed(lite0.preprocess([data.chelsea(), data.coffee(), data.camera()]))
    assert features.shape == (3, 1280) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert lite0.embed(lite0.preprocess([])).shape == (0, 1280)


def test_bundled_weights_classify_chelsea_as_a_cat(lite0):
    import timm

    logits = lite0.classify(lite0.preprocess([data.chelsea()]))[0]
    top1 = int(logits.argmax())
    name = timm.data.ImageNetInfo().index_to_description(top1)
    assert top1 in CAT_CLASSES, f"chelsea classified as {top1} ({name}): weights mapped wrongly"
    # the coffee cup must not be a cat: the classifier discriminates rather than always saying "cat"
    assert int(lite0.classify(lite0.preprocess([data.coffee()]))[0].argmax()) not in CAT_CLASSES


def test_half_scale_normalisation_matches_the_weights_batchnorm_statistics(lite0):
    # The first BatchNorm remembers the stem activations seen in training; the right input scaling
    # reproduces them on natural images, the wrong one is off by ~4x in variance.
    images = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket(), data.camera(), data.horse()]
    network = lite0.module
    running_var = network.bn1.running_var
    alive = running_var > 1e-3

    def variance_mismatch(mean, std) -> float:
        probe = base.TorchExtractor(
            network,
            id="probe",
            display_name="",
            input_size=224,
            dim=1280,
            device="cpu",
            mean=mean,
            std=std,
            fit="squash",
        )
        with torch.inference_mode():
            stem = network.conv_stem(probe.preprocess(images))
        ratio = stem.var(dim=(0, 2, 3))[alive] / running_var[alive]
        return float(ratio.log().abs().mean())

    assert tuple(lite0.mean) == efficientnet.MEAN == (0.5, 0.5, 0.5)
    assert variance_mismatch(efficientnet.MEAN, efficientnet.STD) < 0.5
    assert variance_mismatch(base.IMAGENET_MEAN, base.IMAGENET_STD) > 1.0


@pytest.mark.parametrize("size", [224, 64])
def test_resized_copy_is_far_closer_than_a_different_image(size, lite0):
    extractor = lite0 if size == 224 else registry.create("efficientnet-lite0", device="cpu", input_size=size)
    chelsea = data.chelsea()
    smaller = (rescale(chelsea, 0.8, channel_axis=2, anti_aliasing=True) * 255).astype(np.uint8)
    f = extractor.embed(extractor.preprocess([chelsea, smaller, data.astronaut(), data.coffee()]))
    same = cosine(f[0], f[1])
    different = max(cosine(f[0], f[2]), cosine(f[0], f[3]))
    assert same > 0.9 and same - different > 0.3, (same, different)


def test_input_size_override_changes_the_cache_key(lite0):
    small = registry.create("efficientnet-lite0", device="cpu", input_size=64)
    assert small.input_size == 64 and small.dim == 1280
    assert small.preprocess([data.chelsea()]).shape == (1, 3, 64, 64)
    assert small.cache_key != lite0.cache_key and "64" in small.cache_key
    with pytest.raises(ValueError):
        registry.create("efficientnet-lite0", device="cpu", input_size=4)


def test_position_mapping_refuses_weights_that_do_not_fit(tmp_path):
    state = torch.load(efficientnet.bundled_weights_path(), weights_only=True)
    truncated = dict(list(state.items())[:-2])
    torch.save(truncated, tmp_path / "short.pth")
    with pytest.raises(ValueError, match="296"):
        efficientnet.load_lite0(str(tmp_path / "short.pth"))
    wrong = dict(state)
    wrong["_fc.weight"] = torch.zeros(10, 1280)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"_fc.weight \(10, 1280\)"):
        efficientnet.load_lite0(str(tmp_path / "wrong.pth"))


def test_the_plain_torch_network_is_timms_efficientnet_lite0_bit_for_bit(lite0):
    # lite0_network rebuilds the network so that loading the default model skips `import timm`; it must give
    # exactly timm's outputs (the feature cache and every stored session depend on it).
    import timm

    reference = timm.create_model("efficientnet_lite0", pretrained=False)
    assert list(reference.state_dict()) == list(lite0.module.state_dict())
    reference.load_state_dict(lite0.module.state_dict())
    reference.eval().to(memory_format=torch.channels_last)  # the layout the extractor runs in
    batch = lite0.preprocess([data.chelsea(), data.coffee(), data.camera()])
    batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ours = lite0.module.forward_head(lite0.module.forward_features(batch), pre_logits=True)
        theirs = reference.forward_head(reference.forward_features(batch), pre_logits=True)
        assert torch.equal(ours, theirs)
        assert torch.equal(lite0.module(batch), reference(batch))


def test_local_weights_file_loads_and_gets_its_own_cache_key(tmp_path, lite0):
    state = torch.load(efficientnet.bundled_weights_path(), weights_only=True)
    torch.save(state, tmp_path / "copy.pth")
    local = registry.create("efficientnet-lite0", device="cpu", weights_path=str(tmp_path / "copy.pth"))
    batch = lite0.preprocess([data.chelsea()])
    np.testing.assert_allclose(local.embed(batch), lite0.embed(batch), atol=1e-5)
    assert local.cache_key != lite0.cache_key


def test_intermediate_layer_is_global_pooled(lite0):
    layered = registry.create("efficientnet-lite0", device="cpu", layer="blocks.3", input_size=96)
    expected = layered.module.blocks[3][-1].conv_pwl.out_channels
    features = layered.embed(layered.preprocess([data.chelsea(), data.coffee()]))
    assert layered.dim == expected and features.shape == (2, expected)
    assert "layer=blocks.3" in layered.cache_key
    with pytest.raises(ValueError, match="no layer named"):
        registry.create("efficientnet-lite0", device="cpu", layer="no.such.layer")


def test_registry_lists_every_model_with_honest_download_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGCLUST_CACHE_DIR", str(tmp_path))
    models = {m.id: m for m in registry.list_models()}
    assert registry.list_models()[0].id == registry.DEFAULT_MODEL
    assert {
        "efficientnet-lite0",
        "clip-vit-b-32",
        "clip-vit-l-14",
        "resnet50",
        "resnet152",
        "inception-resnet-v2",
        "pixels",
        "hog",
        "phash",
        "colorhash",
    } <= set(models)
    for info in models.values():
        assert info.dim > 0 and info.input_size > 0 and info.licence and info.description
        bundled = info.family in ("efficientnet", "classical")
        assert info.needs_download is not bundled, info.id
    # once the weights file is in the cache, the model no longer needs a download
    from imgclust_desktop.core.models import cnn

    weights = tmp_path / "weights" / cnn.CATALOGUE["resnet50"].filename
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    assert registry.get_info("resnet50").needs_download is False
    assert registry.get_info("resnet152").needs_download is True
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        registry.create("no-such-model")


def test_device_resolution_and_batch_size(lite0):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert registry.resolve_device("auto") == expected
    assert registry.resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            registry.resolve_device("cuda")
    with pytest.raises(ValueError):
        registry.resolve_device("tpu")
    at_224 = device.recommended_batch_size(lite0)
    small = registry.create("efficientnet-lite0", device="cpu", input_size=64)
    assert device.recommended_batch_size(small) > at_224 >= 1
    small.max_batch_size = 3
    assert device.recommended_batch_size(small) == 3


def test_out_of_memory_halves_the_batch_and_keeps_every_row(lite0):
    class Flaky(base.TorchExtractor):
        def _forward(self, x):
            if len(x) > 2:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return x.mean(dim=(2, 3))

    flaky = Flaky(torch.nn.Identity(), id="flaky", display_name="", input_size=16, dim=3, device="cpu")
    batch = flaky.preprocess([np.full((10, 10, 3), v, np.uint8) for v in range(0, 250, 25)])
    features = flaky.embed(batch)
    assert features.shape == (10, 3) and flaky.max_batch_size == 2
    np.testing.assert_allclose(features, batch.mean(dim=(2, 3)).numpy(), atol=1e-6)


def test_fit_square_keeps_aspect_and_odd_arrays_become_rgb():
    wide = np.zeros((50, 100, 3), np.uint8)
    wide[:] = 200
    padded = base.fit_square(wide, 64, "pad", fill=(10, 20, 30))
    assert padded.shape == (64, 64, 3)
    assert (padded[0, 0] == (10, 20, 30)).all() and (padded[32, 32] == 200).all()
    assert (base.fit_square(wide, 64, "crop") == 200).all()
    assert base.fit_square(wide, 64, "squash").shape == (64, 64, 3)
    assert base.as_rgb_uint8(np.ones((8, 8), np.float64)).max() == 255
    assert base.as_rgb_uint8(np.zeros((8, 8, 4), np.uint8)).shape == (8, 8, 3)
    with pytest.raises(ValueError):
        base.as_rgb_uint8(np.zeros((3,), np.uint8))


def test_a_file_that_is_not_weights_is_refused_with_a_reason(tmp_path):
    (tmp_path / "notes.pth").write_text("these are not weights")
    with pytest.raises(ValueError, match="cannot read"):
        registry.create("efficientnet-lite0", device="cpu", weights_path=str(tmp_path / "notes.pth"))
    with pytest.raises(ValueError, match="resnet50"):
        registry.create("resnet50", device="cpu", weights_path=str(tmp_path / "notes.pth"))
