"""CNNs from local weights files, a tiny OpenCLIP round trip, and the classical extractors (no downloads)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from skimage import data

from imgclust_desktop.core.models import clip, cnn, registry


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    torch.manual_seed(0)
    network = cnn.build_network("resnet50")
    path = tmp_path_factory.mktemp("weights") / "resnet50-random.pth"
    torch.save(network.state_dict(), path)
    return path, network.eval()


def test_catalogue_urls_match_torchvision_and_timm():
    import timm
    import torchvision

    assert cnn.CATALOGUE["resnet50"].url == torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url
    assert cnn.CATALOGUE["resnet152"].url == torchvision.models.ResNet152_Weights.IMAGENET1K_V2.url
    cfg = timm.models.get_pretrained_cfg("inception_resnet_v2.tf_in1k")
    assert cfg.hf_hub_id in cnn.CATALOGUE["inception-resnet-v2"].url
    assert tuple(cfg.mean) == cnn.CATALOGUE["inception-resnet-v2"].mean


def test_resnet_from_local_file_matches_the_network_it_came_from(resnet_weights):
    path, network = resnet_weights
    extractor = registry.create("resnet50", device="cpu", weights_path=str(path), input_size=64)
    batch = extractor.preprocess([data.chelsea(), data.coffee()])
    features = extractor.embed(batch)
    assert extractor.dim == 2048 and features.shape == (2, 2048) and features.dtype == np.float32
    with torch.inference_mode():
        network.fc, fc = torch.nn.Identity(), network.fc
        expected = network(batch).numpy()
        network.fc = fc
    # the extractor runs channels-last, which sums in another order: equal to float32 rounding (values ~15)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
    assert "resnet50-random.pth" in extractor.cache_key


def test_resnet_intermediate_layer_gives_its_channel_count(resnet_weights):
    path, _ = resnet_weights
    extractor = registry.create(
        "resnet50", device="cpu", weights_path=str(path), layer="layer2", input_size=64
    )
    assert extractor.dim == 512  # ResNet-50 layer2 ends in 4 x 128 bottleneck channels
    features = extractor.embed(extractor.preprocess([data.chelsea(), data.camera()]))
    assert features.shape == (2, 512) and np.isfinite(features).all()
    assert "layer=layer2" in extractor.cache_key


def test_weights_for_another_architecture_are_refused(tmp_path):
    torch.save(torch.nn.Linear(3, 3).state_dict(), tmp_path / "linear.pth")
    with pytest.raises(ValueError, match="resnet152"):
        registry.create("resnet152", device="cpu", weights_path=str(tmp_path / "linear.pth"))


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import open_clip

    folder = tmp_path_factory.mktemp("clipcfg")
    config = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (folder / "imgclust-tiny-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / "imgclust-tiny-clip.json")
    torch.manual_seed(1)
    return clip.ClipExtractor("imgclust-tiny-clip", weights_path=None, device="cpu")


def test_tiny_clip_embeds_images_and_text(tiny_clip):
    assert tiny_clip.has_text and tiny_clip.input_size == 32 and tiny_clip.dim == 32
    images = tiny_clip.embed(tiny_clip.preprocess([data.chelsea(), data.coffee(), data.chelsea()]))
    texts = tiny_clip.embed_text(["a photo of a cat", "a cup of coffee"])
    assert images.shape == (3, 32) and texts.shape == (2, 32) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(images[0], images[2], atol=1e-6)
    assert not np.allclose(images[0], images[1])
    assert tiny_clip.embed_text([]).shape == (0, 32)


def test_clip_weights_file_round_trip(tiny_clip, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(tiny_clip.module.state_dict(), path)
    torch.manual_seed(2)  # a fresh random init that differs from the saved weights
    reloaded = clip.ClipExtractor("imgclust-tiny-clip", weights_path=str(path), device="cpu")
    unloaded = clip.ClipExtractor("imgclust-tiny-clip", weights_path=None, device="cpu")
    batch = tiny_clip.preprocess([data.chelsea(), data.astronaut()])
    np.testing.assert_array_equal(reloaded.embed(batch), tiny_clip.embed(batch))
    np.testing.assert_array_equal(reloaded.embed_text(["cat"]), tiny_clip.embed_text(["cat"]))
    assert not np.allclose(unloaded.embed(batch), tiny_clip.embed(batch))
    torch.save({"bogus": torch.zeros(1)}, tmp_path / "bogus.pt")
    with pytest.raises(ValueError, match="CLIP weights"):
        clip.ClipExtractor("imgclust-tiny-clip", weights_path=str(tmp_path / "bogus.pt"), device="cpu")


def test_registry_clip_refuses_options_it_cannot_honour():
    with pytest.raises(ValueError, match="fixed 224"):
        registry.create("clip-vit-b-32", input_size=64)
    with pytest.raises(ValueError, match="layer"):
        registry.create("clip-vit-b-32", layer="visual")


@pytest.mark.parametrize(
    ("model_id", "dim"),
    [
        ("pixels", 32 * 32 * 3),
        ("pixels-gray", 64 * 64),
        ("hog", 8 * 16 * 16),
        ("ahash", 64),
        ("phash", 64),
        ("dhash", 64),
        ("whash", 64),
        ("colorhash", 42),
    ],
)
def test_classical_dims_and_identical_images_give_identical_features(model_id, dim):
    extractor = registry.create(model_id)
    assert extractor.dim == dim and not extractor.needs_download
    gray = data.camera()  # a 2-D grayscale array is accepted too
    features = extractor.embed(
        extractor.preprocess([data.chelsea(), data.chelsea().copy(), data.coffee(), gray])
    )
    assert features.shape == (4, dim) and features.dtype == np.float32
    np.testing.assert_array_equal(features[0], features[1])
    assert not np.array_equal(features[0], features[2])
    if model_id.endswith("hash"):
        assert set(np.unique(features)) <= {0.0, 1.0}


def test_pixels_input_size_override():
    extractor = registry.create("pixels-gray", input_size=8)  # 8x8 digits need no more
    assert extractor.dim == 64 and extractor.cache_key == "pixels-gray@8"
    assert extractor.embed(extractor.preprocess([data.camera()])).shape == (1, 64)


def test_cnn_uses_weights_already_in_the_cache_without_downloading(resnet_weights, tmp_path, monkeypatch):
    import shutil

    path, _ = resnet_weights
    monkeypatch.setenv("IMGCLUST_CACHE_DIR", str(tmp_path))
    assert registry.get_info("resnet50").needs_download
    cached = tmp_path / "weights" / cnn.CATALOGUE["resnet50"].filename
    cached.parent.mkdir(parents=True)
    shutil.copy(path, cached)
    assert not registry.get_info("resnet50").needs_download
    extractor = registry.create("resnet50", device="cpu", input_size=64)
    assert extractor.dim == 2048 and "imagenet" in extractor.cache_key
    assert extractor.embed(extractor.preprocess([data.chelsea()])).shape == (1, 2048)
