"""Automatic cluster names: words the offline model's ImageNet head gives, short and distinct."""

from __future__ import annotations

import numpy as np
import pytest

from imgclust_desktop.core.names import LeafTerms, cluster_names, leaf_terms, term_probabilities


@pytest.fixture(scope="module")
def extractor():
    from imgclust_desktop.core.models import registry

    return registry.create("efficientnet-lite0", device="cpu")


def photo_features(extractor, names: list[str]) -> np.ndarray:
    """Features of scikit-image sample photos through the real model (no download: they ship in the wheel)."""
    from skimage import data

    images = []
    for name in names:
        pixels = getattr(data, name)()
        images.append(np.stack([pixels] * 3, -1) if pixels.ndim == 2 else pixels[..., :3])
    return extractor.embed(extractor.preprocess(images))


def test_the_default_models_head_names_photos_from_their_stored_features(extractor):
    features = photo_features(extractor, ["coffee", "chelsea", "rocket"])
    vocabulary, probs = term_probabilities(extractor, features)
    assert len(vocabulary) == 1000 and probs.shape == (3, 1000)
    assert np.allclose(probs.astype(np.float32).sum(axis=1), 1.0, atol=1e-2)
    top = [vocabulary[int(i)] for i in probs.argmax(axis=1)]
    assert top[0] in {"espresso", "cup", "coffee mug", "eggnog"}, top
    assert top[1] in {"tabby", "tiger cat", "Egyptian cat", "lynx"}, top
    # Each image is its own "leaf": the cluster names are the words, one or two.
    labels = np.arange(3)
    terms = leaf_terms(vocabulary, probs, labels, 3)
    names = cluster_names(labels, terms, labels, ["a/1.png", "b/2.png", "c/3.png"])
    assert names[0].split(" · ")[0] == top[0] and len(set(names.values())) == 3


def test_a_mid_level_layer_has_no_head_and_names_fall_back_to_folders():
    class Layered:
        layer = "blocks.4"

    assert term_probabilities(Layered(), np.zeros((2, 112), np.float32)) is None
    labels = np.array([0, 0, 0, 1, 1, 2])
    paths = ["x/cats/1", "x/cats/2", "x/dogs/3", "x/dogs/4", "x/dogs/5", "y/misc/6"]
    names = cluster_names(labels, None, None, paths)
    assert names == {0: "cats", 1: "dogs", 2: "misc"}
    mixed = cluster_names(np.array([0, 0, 0]), None, None, ["a/p/1", "a/q/2", "a/r/3"])
    assert mixed == {0: "Group 1"}


def test_siblings_that_share_their_words_get_a_distinguishing_word_then_a_number():
    vocabulary = ["cup", "espresso", "saucer", "plate"]
    ids = np.array([[0, 1, 2, 3], [0, 1, 3, 2], [0, 1, 2, 3]], np.int32)
    weight = np.array([[5, 4, 1, 0.5], [5, 4, 2, 0.5], [5, 4, 1, 0.5]], np.float32)
    terms = LeafTerms(vocabulary, ids, weight)
    labels = np.array([0, 1, 2])
    names = cluster_names(labels, terms, labels, ["a", "b", "c"])
    assert len(set(names.values())) == 3
    assert names[1] == "cup · plate"  # its own next word
    assert names[0].startswith("cup · ") and names[2].startswith("cup · ")
    # Not siblings (different parents): the same words are fine.
    apart = cluster_names(labels, terms, labels, ["a", "b", "c"], siblings={0: 0, 1: 1, 2: 2})
    assert apart[0] == apart[2] == "cup · espresso"


def words_of(terms: tuple[np.ndarray, np.ndarray]) -> list[tuple[list[int], list[float]]]:
    """_cluster_terms' arrays as each cluster's (word ids, weights), the padding left out."""
    top, weight = terms
    return [
        ([int(t) for t in row if t >= 0], [float(x) for t, x in zip(row, mass, strict=True) if t >= 0])
        for row, mass in zip(top, weight, strict=True)
    ]


@pytest.mark.parametrize("dense", [True, False])
def test_a_leaf_split_between_clusters_gives_each_its_share_of_the_leafs_words(monkeypatch, dense):
    import imgclust_desktop.core.names as names_module
    from imgclust_desktop.core.names import _cluster_terms

    if not dense:
        monkeypatch.setattr(names_module, "DENSE_WORDS", 0)
    vocabulary = ["apple", "banana", "cherry"]
    ids = np.array([[0, 1], [2, 0]], np.int32)  # leaf 0: apple 4, banana 2; leaf 1: cherry 6, apple 1
    weight = np.array([[4, 2], [6, 1]], np.float32)
    leaf_of = np.array([0, 0, 0, 0, 1, 1])
    labels = np.array([0, 0, 0, 1, 1, 1])  # cluster 1 has a quarter of leaf 0 and all of leaf 1
    terms = LeafTerms(vocabulary, ids, weight)
    assert words_of(_cluster_terms(labels, [0, 1], terms, leaf_of)) == [
        ([0, 1], [3.0, 1.5]),
        ([2, 0, 1], [6.0, 2.0, 0.5]),
    ]
    names = cluster_names(labels, terms, leaf_of, ["a"] * 6)
    assert names == {0: "apple · banana", 1: "cherry"}  # banana has half of apple's weight; apple not
    tied = LeafTerms(vocabulary, np.array([[2, 1], [2, 1]], np.int32), np.ones((2, 2), np.float32))
    tie = words_of(_cluster_terms(labels, [0, 1], tied, leaf_of))[0]
    assert tie == ([1, 2], [0.75, 0.75])  # a tie: the lower id first


@pytest.mark.parametrize("edited", [False, True])
def test_the_dense_table_and_the_grouped_sums_name_clusters_alike(monkeypatch, edited):
    """Up to a thousand clusters their words are summed in a dense table, beyond by grouped sums over
    (cluster, word) pairs: the same words and names either way, for a plain cut (each leaf in one cluster)
    and after hand edits."""
    import imgclust_desktop.core.names as names_module
    from imgclust_desktop.core.names import _cluster_terms

    rng = np.random.default_rng(4)
    m, vocabulary = 300, [f"word{i}" for i in range(40)]
    ids = rng.integers(0, len(vocabulary), size=(m, 8)).astype(np.int32)
    weight = np.sort(rng.random((m, 8)).astype(np.float32), axis=1)[:, ::-1].copy()
    weight[:, -1] = 0  # a word with no weight is not one of the leaf's words
    terms = LeafTerms(vocabulary, ids, weight)
    leaf_of = rng.integers(0, m, size=3000)
    labels = (leaf_of // 7).astype(np.int64)  # groups of whole leaves
    if edited:
        moved = rng.choice(len(labels), 200, replace=False)
        labels[moved] = rng.integers(-1, labels.max() + 1, size=200)  # leaves split; some rows to noise
    paths = [f"/p/f{i % 5}/{i}.jpg" for i in range(len(labels))]
    cluster_ids = np.unique(labels[labels >= 0]).tolist()
    dense_terms = words_of(_cluster_terms(labels, cluster_ids, terms, leaf_of))
    dense = cluster_names(labels, terms, leaf_of, paths)
    dense_folders = cluster_names(labels, None, None, paths)
    monkeypatch.setattr(names_module, "DENSE_WORDS", 0)
    assert words_of(_cluster_terms(labels, cluster_ids, terms, leaf_of)) == dense_terms
    assert cluster_names(labels, terms, leaf_of, paths) == dense
    assert cluster_names(labels, None, None, paths) == dense_folders
    assert len(dense) == len(cluster_ids)


@pytest.mark.parametrize("dense", [True, False])
def test_a_folder_holding_half_a_clusters_images_names_it_the_first_met_on_a_tie(monkeypatch, dense):
    """Folder names: the folder with most of a cluster's images when it holds at least half of them; two
    folders with half each: the one whose image comes first. Counted in a clusters x folders table or, with
    many clusters, from the sorted (cluster, folder) pairs: the same names."""
    import imgclust_desktop.core.names as names_module

    if not dense:
        monkeypatch.setattr(names_module, "DENSE_WORDS", 0)
    paths = ["/p/cats/1.jpg", "/p/dogs/2.jpg", "/p/dogs/3.jpg", "/p/cats/4.jpg",  # 0: a tie, cats first
             "/p/owls/5.jpg", "/p/cats/6.jpg", "/p/dogs/7.jpg",  # 1: no folder holds half
             "/p/dogs/8.jpg", "/p/dogs/9.jpg", "/p/owls/10.jpg", "/p/x/11.jpg"]  # fmt: skip
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, -1])
    assert cluster_names(labels, None, None, paths) == {0: "cats", 1: "Group 2", 2: "dogs"}

    rng = np.random.default_rng(5)  # and on 3,000 clusters, against the table
    labels = rng.integers(-1, 3000, size=20000)
    folder = np.where(rng.random(20000) < 0.6, labels % 40, rng.integers(0, 40, size=20000))
    paths = [f"/p/f{f}/{i}.jpg" for i, f in enumerate(folder.tolist())]
    monkeypatch.setattr(names_module, "DENSE_WORDS", 1 << 30)
    table = cluster_names(labels, None, None, paths)
    monkeypatch.setattr(names_module, "DENSE_WORDS", 0)
    assert cluster_names(labels, None, None, paths) == table
    assert sum(not name.startswith("Group") for name in table.values()) > 1000


def test_the_kept_imagenet_words_are_timms_table_and_naming_imports_no_timm():
    import subprocess
    import sys

    from timm.data import ImageNetInfo

    from imgclust_desktop.core.names import imagenet_vocabulary

    info = ImageNetInfo()
    timms = [info.index_to_description(i).split(",")[0].strip() for i in range(info.num_classes())]
    assert imagenet_vocabulary() == timms  # the same 1,000 words in class order
    # a fresh interpreter: the words come without timm (whose import pulls in torchvision and torch._dynamo)
    code = "import sys; from imgclust_desktop.core import names; names.imagenet_vocabulary(); print('timm' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
