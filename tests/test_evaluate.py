"""evaluate(): ACC with Hungarian matching, NMI/ARI, confusion, per-class and the business metric."""

import pytest

from imgclust_desktop.core.evaluate import evaluate, truth_from_paths


def test_truth_comes_from_parent_folders(tmp_path):
    paths = [str(tmp_path / "cats" / "a.png"), str(tmp_path / "dogs" / "x" / "b.jpg")]
    assert truth_from_paths(paths) == ["cats", "x"]
    assert truth_from_paths(paths, level="grandparent-folder")[1] == "dogs"
    with pytest.raises(ValueError):
        truth_from_paths(paths, level="exif")


def test_a_permuted_labelling_scores_perfectly():
    truth = ["a"] * 5 + ["b"] * 3 + ["c"] * 4
    labels = [2] * 5 + [0] * 3 + [1] * 4
    result = evaluate(labels, truth)
    assert (
        result["acc"] == 1.0 and result["nmi"] == pytest.approx(1.0) and result["ari"] == pytest.approx(1.0)
    )
    assert result["mapping"] == {2: "a", 0: "b", 1: "c"}
    assert all(v["precision"] == 1.0 and v["recall"] == 1.0 for v in result["per_class"].values())


def test_hungarian_handles_more_clusters_than_classes_and_noise_counts_as_wrong():
    truth = ["a"] * 6 + ["b"] * 4
    labels = [0, 0, 0, 0, 3, 3, 1, 1, 1, -1]  # class a split in two clusters, one b image is noise
    result = evaluate(labels, truth)
    assert result["acc"] == pytest.approx(7 / 10)  # 4 (a->0) + 3 (b->1); cluster 3 and noise are wrong
    assert result["n_clusters"] == 3 and result["noise_fraction"] == pytest.approx(0.1)
    assert result["confusion"]["clusters"] == [-1, 0, 1, 3]
    assert result["confusion"]["matrix"] == [[0, 4, 0, 2], [1, 0, 3, 0]]
    fewer = evaluate([0] * 10, truth)  # one cluster for two classes
    assert fewer["acc"] == pytest.approx(0.6)


def test_business_metric_keeps_every_cluster_that_is_mostly_the_keep_class():
    truth = ["scan"] * 8 + ["photo"] * 4
    labels = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]  # clusters 0 and 1 are scans; 2 is mostly photos
    business = evaluate(labels, truth, keep_class="scan")["business"]
    assert business["kept_clusters"] == [0, 1]
    assert business["precision"] == 1.0 and business["recall"] == pytest.approx(7 / 8)
    assert business["score"] == pytest.approx(0.3 * 1.0 + 0.7 * 7 / 8)
    with pytest.raises(ValueError):
        evaluate(labels, truth, keep_class="drawing")
