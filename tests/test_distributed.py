"""`--engine ray`: the same features, skips and clusters as the local engine, on a local Ray instance."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_groups

from imgclust_desktop import cli
from imgclust_desktop.core import distributed, feature_store, sources
from imgclust_desktop.core import session as session_io
from imgclust_desktop.core.features import compute_features
from imgclust_desktop.core.models import registry
from imgclust_desktop.core.progress import Cancelled

ray = pytest.importorskip("ray", reason="the test extra installs ray[data]; CI runs these")
DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the whole module (starting Ray takes seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> Path:
    """12 small images in 3 groups, plus files a local run skips for a reason."""
    root = write_groups(tmp_path_factory.mktemp("small"), groups=3, per_group=4, size=48)
    good = (root / "group0" / "img00.png").read_bytes()
    (root / "broken").mkdir()
    (root / "broken" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "broken" / "notes.jpg").write_text("not a picture at all, just words\n")
    (root / "broken" / "empty.png").write_bytes(b"")
    return root


def local_features(inputs, **options):
    """What the local engine computes for `inputs` (no cache): features by path and every skip."""
    scanned = sources.scan(inputs)
    chosen = distributed.model_options(distributed.RayJob(inputs=list(map(str, inputs))), scanned.files)
    extractor = registry.create(
        chosen["model_id"], device="cpu", layer=chosen["layer"], input_size=chosen["input_size"]
    )
    result = compute_features(scanned.files, extractor, feature_cache=None, thumb_cache=None)
    rows = {f.path: result.features[i] for i, f in enumerate(result.files)}
    return rows, sorted(scanned.skipped + result.skipped, key=lambda s: s.path), extractor.cache_key


def store_rows(store: feature_store.FeatureStore) -> dict[str, np.ndarray]:
    return {path: store.features[i] for i, path in enumerate(store.paths)}


def test_small_folder_features_and_skips_equal_the_local_engine(local_ray, small_folder, tmp_path):
    run = distributed.extract_to_store(
        distributed.RayJob(inputs=[str(small_folder)], shard_size=5, use_cache=False), tmp_path / "store"
    )
    store = feature_store.open_store(tmp_path / "store")
    expected, expected_skipped, cache_key = local_features([small_folder])
    assert run.shards_computed == run.shards_total == 3  # 13 files pass the scan, 5 per shard
    assert store.meta["feature_cache_key"] == cache_key == "efficientnet-lite0@64/layer=blocks.4"
    assert sorted(store.paths) == sorted(expected) and len(store.paths) == 12
    assert store.paths == sorted(store.paths)  # rows in scan order
    got = store_rows(store)
    assert max(float(np.abs(got[p] - expected[p]).max()) for p in expected) <= 1e-4
    assert [(s.path, s.reason) for s in store.skipped] == [(s.path, s.reason) for s in expected_skipped]
    reasons = {Path(s.path).name: s.reason for s in store.skipped}
    assert reasons["empty.png"] == "empty file (0 bytes)"
    assert reasons["notes.jpg"].startswith("not an image")
    assert "truncated.png" in reasons  # decoded on a Ray worker, skipped there with the local reason
    assert store.keys == [sources.FileIdentity(p, *_size_mtime(p)).key() for p in store.paths]


def _size_mtime(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def test_a_resumed_run_computes_only_the_missing_shards(local_ray, small_folder, tmp_path):
    job = distributed.RayJob(inputs=[str(small_folder)], shard_size=4, use_cache=False)
    first = distributed.extract_to_store(job, tmp_path / "store")
    before = feature_store.open_store(tmp_path / "store")
    assert first.shards_computed == first.shards_total == 4
    # a run killed before its last shards: their files are not on disk (the .json is written last)
    shard_files = sorted((tmp_path / "store" / "shards").glob("*.json"))
    shard_files[1].unlink()
    shard_files[3].with_suffix(".npy").unlink()
    (tmp_path / "store" / "features.npy").unlink()

    again = distributed.extract_to_store(job, tmp_path / "store")
    after = feature_store.open_store(tmp_path / "store")
    assert (again.shards_kept, again.shards_computed, again.files_computed) == (2, 2, 4 + 1)
    assert after.paths == before.paths
    assert np.array_equal(after.features, before.features)
    assert after.skipped == before.skipped


def test_cancel_stops_the_ray_job_and_keeps_finished_shards(local_ray, small_folder, tmp_path):
    job = distributed.RayJob(inputs=[str(small_folder)], shard_size=2, batch_size=2, use_cache=False)
    seen = []

    def cancelled() -> bool:
        return len(seen) > 0

    def on_progress(p) -> None:
        if p.stage == "features" and p.done > 0:
            seen.append(p.done)

    with pytest.raises(Cancelled):
        distributed.extract_to_store(job, tmp_path / "store", on_progress=on_progress, cancelled=cancelled)
    with pytest.raises(feature_store.StoreError, match="incomplete"):
        feature_store.open_store(tmp_path / "store")
    finished = len(list((tmp_path / "store" / "shards").glob("*.json")))
    assert 1 <= finished < 7  # 13 files that passed the scan, 2 per shard
    resumed = distributed.extract_to_store(job, tmp_path / "store")
    assert resumed.shards_kept == finished and resumed.shards_computed == 7 - finished
    assert len(feature_store.open_store(tmp_path / "store").paths) == 12


def test_object_store_urls_read_through_pyarrow_give_the_same_rows(local_ray, small_folder, tmp_path):
    url = "file://" + str(small_folder)
    distributed.extract_to_store(
        distributed.RayJob(inputs=[url], shard_size=8, use_cache=False), tmp_path / "store"
    )
    store = feature_store.open_store(tmp_path / "store")
    expected, expected_skipped, _ = local_features([small_folder])
    assert all(p.startswith("file://") for p in store.paths)
    got = {p[len("file://") :]: v for p, v in store_rows(store).items()}
    assert sorted(got) == sorted(expected)
    assert max(float(np.abs(got[p] - expected[p]).max()) for p in expected) <= 1e-4
    assert {(s.path[len("file://") :], s.reason) for s in store.skipped} == {
        (s.path, s.reason) for s in expected_skipped
    }


def test_cluster_engine_ray_caches_rows_under_local_keys(
    local_ray, small_folder, tmp_path, capsys, monkeypatch
):
    from imgclust_desktop.core import features as local_engine

    decoded_here, real_stream = [], local_engine.decode_stream

    def counting_stream(files, **options):
        decoded_here.extend(files)
        return real_stream(files, **options)

    monkeypatch.setattr(local_engine, "decode_stream", counting_stream)
    cache = tmp_path / "cache"
    common = [str(small_folder), "--cache-dir", str(cache), "--no-report", "--k", "3", "-q"]
    ray_options = ["--engine", "ray", "--shard-size", "5"]
    assert cli.main(["cluster", *common, "--out", str(tmp_path / "ray"), *ray_options]) == 0
    assert "3 computed on Ray" in capsys.readouterr().err
    by_ray = session_io.load(tmp_path / "ray")
    assert by_ray.params["features_computed"] == 0  # the local stages found every row in the cache
    # nor any thumbnail: the local stages decoded only the file that no engine can decode
    assert [Path(f.path).name for f in decoded_here] == ["truncated.png"]
    assert not (cache / "ray-runs").exists() or not any((cache / "ray-runs").iterdir())

    assert cli.main(["cluster", *common, "--out", str(tmp_path / "local")]) == 0
    local = session_io.load(tmp_path / "local")
    assert local.params["features_computed"] == 0  # a later local run reuses the Ray rows
    assert local.paths == by_ray.paths and np.array_equal(local.labels, by_ray.labels)
    assert [s.reason for s in local.skipped] == [s.reason for s in by_ray.skipped]


def test_features_command_writes_a_store_and_says_how_to_cluster_it(
    local_ray, small_folder, tmp_path, capsys
):
    code = cli.main(["features", str(small_folder), "--out", str(tmp_path / "store"), "--no-cache", "-q"])
    out = capsys.readouterr().out
    assert code == 0
    assert "12 feature rows, 3 skipped" in out and "imgclust cluster --features" in out
    store = feature_store.open_store(tmp_path / "store")
    assert store.features.dtype == np.float32 and store.features.shape == (12, 112)
    assert (tmp_path / "store" / "paths.txt").read_text().splitlines() == store.paths
    # a store of another model in the same folder is refused, not mixed
    with pytest.raises(SystemExit) as exit_code:
        cli.main(["features", str(small_folder), "--out", str(tmp_path / "store"), "--input-size", "96"])
    assert exit_code.value.code == 2 and "choose another folder" in capsys.readouterr().err


@pytest.mark.skipif(not DEMO.is_dir(), reason="demo folder missing")
def test_demo_folder_same_features_skips_and_clusters_as_local(local_ray, tmp_path):
    cache = tmp_path / "cache"
    options = ["--cache-dir", str(cache), "--no-report", "-q"]
    assert cli.main(["cluster", str(DEMO), "--out", str(tmp_path / "local"), *options, "--no-cache"]) == 0
    local = session_io.load(tmp_path / "local")
    assert cli.main(["cluster", str(DEMO), "--out", str(tmp_path / "ray"), *options, "--engine", "ray"]) == 0
    by_ray = session_io.load(tmp_path / "ray")

    assert by_ray.paths == local.paths and len(local.paths) >= 200
    assert float(np.abs(by_ray.features - local.features).max()) <= 1e-4
    assert [(s.path, s.reason) for s in by_ray.skipped] == [(s.path, s.reason) for s in local.skipped]
    assert np.array_equal(by_ray.labels, local.labels)


def test_plan_actors_uses_gpus_with_one_each_and_leaves_cpu_for_decoding():
    gpu = distributed.plan_actors({"CPU": 32, "GPU": 4}, "auto", None)
    assert (gpu["device"], gpu["actors"], gpu["num_gpus"]) == ("cuda", 4, 1)
    cpu = distributed.plan_actors({"CPU": 2}, "auto", 2)
    assert cpu["device"] == "cpu" and cpu["actors"] == 2 and 2 * cpu["num_cpus"] <= 1.5
    with pytest.raises(distributed.RayUnavailable, match="no GPUs"):
        distributed.plan_actors({"CPU": 8}, "cuda", None)


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch, small_folder, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as on a default install
    with pytest.raises(distributed.RayUnavailable, match=r"pip install 'imgclust-desktop\[ray\]'"):
        distributed.import_ray()
    code = cli.main(["features", str(small_folder), "--out", str(tmp_path / "s"), "-q"])
    assert code == 1 and "pip install 'imgclust-desktop[ray]'" in capsys.readouterr().err


def test_default_install_and_bundle_stay_ray_free():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("ray") for dep in project["dependencies"])
    assert project["optional-dependencies"]["ray"] == ["ray[data]>=2.40"]
    spec = (root / "packaging" / "imgclust-desktop.spec").read_text()
    assert '"ray",' in spec and '"pyarrow",' in spec


def _processes_running(text: str) -> list[int]:
    """Process ids whose command line (Ray's process title) contains `text` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode("utf-8", "replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker process through /proc")
def test_a_model_worker_that_dies_is_restarted_by_ray_and_the_run_completes(
    local_ray, small_folder, tmp_path
):
    import signal

    job = distributed.RayJob(inputs=[str(small_folder)], shard_size=2, batch_size=2, use_cache=False)
    killed = []

    def kill_the_model_worker_once(p) -> None:
        if p.stage == "features" and p.done > 0 and not killed:
            for pid in _processes_running("EmbedActor"):
                os.kill(pid, signal.SIGKILL)  # as a node losing the process: no clean-up
                killed.append(pid)

    run = distributed.extract_to_store(job, tmp_path / "store", on_progress=kill_the_model_worker_once)
    assert killed, "no model worker process was found to kill"
    store = feature_store.open_store(tmp_path / "store")
    expected, _, _ = local_features([small_folder])
    assert run.shards_computed == 7 and sorted(store.paths) == sorted(expected)
    assert max(float(np.abs(store_rows(store)[p] - expected[p]).max()) for p in expected) <= 1e-4
