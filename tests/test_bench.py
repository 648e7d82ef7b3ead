"""`cnnlab bench --quick`: it runs and writes the report; the speeds themselves are not tested
(machines here are shared and noisy: the speed claims are ratios inside one full run)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cnnlab.bench import rival, run_bench
from cnnlab.bench.workloads import QUICK, WORKLOADS
from cnnlab.cli.main import main

TRAINING = {"bare_pytorch", "bare_pytorch_fast_path", "cnnlab_compute", "cnnlab_end_to_end",
            "lecture_loop"}
LIGHTNING = {"lightning_compute", "lightning_end_to_end"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One `cnnlab bench --quick --json` as a user runs it: (stdout's JSON, results folder)."""
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "XDG_CACHE_HOME": str(out / "cache")}
    done = subprocess.run([sys.executable, "-m", "cnnlab", "bench", "--quick", "--json",
                           "--out", str(out / "results")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), out / "results"


@pytest.mark.slow  # the quick bench (the `quick` fixture)
def test_quick_bench_prints_one_json_object_with_every_workload(quick):
    result, _ = quick
    assert {"machine", "peak", "settings", "workloads", "targets", "notes"} <= result.keys()
    assert [w["name"] for w in result["workloads"]] == [w.name for w in WORKLOADS]
    assert result["peak"]["flops_per_second"] == max(result["peak"]["probes"].values()) > 0
    assert {"load_average", "load_average_end", "cpus", "torch"} <= result["machine"].keys()


@pytest.mark.slow  # the quick bench (the `quick` fixture)
def test_every_workload_has_training_inference_ratios_and_utilisation(quick):
    result, _ = quick
    with_lightning = result["machine"]["lightning"] is not None
    for w in result["workloads"]:
        assert set(w["training"]) == TRAINING | (LIGHTNING if with_lightning else set())
        assert all(run["images_per_second"] > 0 for run in w["training"].values())
        assert [g["batch_size"] for g in w["inference"]] == list(QUICK.inference_batches)
        assert all({"cnnlab", "lecture_loop"} <= g.keys() for g in w["inference"])
        assert {"end_to_end_vs_lecture_loop", "end_to_end_vs_compute_only",
                "compute_vs_bare_step", "compute_vs_bare_step_fast_path"} <= w["ratios"].keys()
        assert w["utilisation"]["training_compute"] > 0
        assert w["flops_per_image"]["training"] > 2 * w["flops_per_image"]["inference"] > 0
        assert w["training"]["cnnlab_compute"]["memory_mb"] > 0
        assert w["fast_path"]["memory_format"] in ("contiguous", "channels_last")


@pytest.mark.slow  # the quick bench (the `quick` fixture)
def test_the_json_and_markdown_files_hold_the_same_run(quick):
    result, folder = quick
    json_file, markdown_file = (folder / name for name in map(os.path.basename, result["files"]))
    assert json_file.name.endswith("-quick.json") and markdown_file.suffix == ".md"
    saved = json.loads(json_file.read_text())
    assert saved["workloads"] == result["workloads"]
    text = markdown_file.read_text()
    for heading in ("## Training, images/s", "## Ratios", "## Inference, images/s", "## Targets"):
        assert heading in text
    assert all(w.name in text for w in WORKLOADS)
    assert [t["target"] for t in saved["targets"]][:2] == [
        "lecture_cnn end to end vs the lectures' loop",
        "lecture_cnn end to end vs its compute-only"]


@pytest.mark.slow  # a quick bench of LeNet-5
def test_without_lightning_its_columns_are_left_out_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(rival, "version", lambda: None)
    result = run_bench(QUICK, models=["lenet5"])
    (workload,) = result["workloads"]
    assert set(workload["training"]) == TRAINING
    assert workload["ratios"]["compute_vs_lightning"] is None
    assert any("Lightning is not installed" in note for note in result["notes"])


def test_an_unknown_model_is_a_user_error(capsys):
    assert main(["bench", "--quick", "--models", "vgg16"]) == 2
    assert "unknown benchmark model 'vgg16'; choose one of: lecture_cnn" in capsys.readouterr().err


def test_a_batch_size_no_step_can_take_is_one_sentence(capsys):
    assert main(["bench", "--batch-size", "0", "--models", "lenet5"]) == 2
    assert "--batch-size must be a whole number from 1 to 4096, not 0" in capsys.readouterr().err


def test_a_batch_size_the_chosen_benchmark_would_ignore_is_refused(capsys):
    assert main(["bench", "--whole-run", "--batch-size", "32"]) == 2
    assert "keep their own" in capsys.readouterr().err


def test_a_small_batch_run_is_written_beside_the_default_one_not_over_it(tmp_path):
    from cnnlab.bench.report import write_results
    result = {"created": "2026-12-03T20:44:00", "machine": {"slug": "amd-epyc-2cpu"},
              "settings": {"batch_size": 64}}
    paths = write_results(result, tmp_path, markdown=lambda r: "table\n")
    assert [p.name for p in paths] == ["2026-12-03-amd-epyc-2cpu-batch64.json",
                                       "2026-12-03-amd-epyc-2cpu-batch64.md"]
    result["settings"]["batch_size"] = 128
    assert write_results(result, tmp_path, markdown=lambda r: "")[1].name == \
        "2026-12-03-amd-epyc-2cpu.md"


def test_ratios_pair_contenders_within_rounds_so_a_slow_stretch_hits_both():
    from cnnlab.bench.report import paired_ratio
    # b's first round ran while the machine was fast; in every round a is 1.1x b.
    a = {"steps_per_round": 10, "round_seconds": [0.5 / 1.1, 2.0 / 1.1, 2.0 / 1.1]}
    b = {"steps_per_round": 10, "round_seconds": [0.5, 2.0, 2.0]}
    assert paired_ratio(a, b) == pytest.approx(1.1)  # best of rounds would say 0.25x
    twice_the_steps = {"steps_per_round": 20, "round_seconds": [1.0, 4.0, 4.0]}
    assert paired_ratio(twice_the_steps, b) == pytest.approx(1.0)
    assert paired_ratio(a, None) is None  # a contender left out (Lightning not installed)


@pytest.mark.parametrize("task", ["segment", "detect"])
def test_a_tasks_quick_bench_sets_cnnlab_beside_the_references_loop(task, tmp_path, capsys):
    assert main(["bench", "--task", task, "--quick", "--json", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == task and result["reference_images_per_second"]["0 workers"] > 0
    assert result["speedup_vs_best_reference"] == pytest.approx(
        result["cnnlab_images_per_second"] / max(result["reference_images_per_second"].values()))
    assert [t["goal"] for t in result["targets"]] == [1.0]
    markdown = (tmp_path / f"{result['created'][:10]}-{task}-quick.md").read_text()
    assert "cnnlab / best reference" in markdown


@pytest.mark.slow  # three processes that train: the lectures' script and cnnlab twice
def test_the_whole_run_bench_times_both_from_process_start_and_the_cache_helps(tmp_path):
    """`cnnlab bench --whole-run --quick`: the lectures' script and cnnlab (cold, then warm)
    each trained to a test accuracy, with ratios and where cnnlab's seconds went."""
    done = subprocess.run([sys.executable, "-m", "cnnlab", "bench", "--whole-run", "--quick",
                           "--json", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    (row,) = result["runs"]
    for name in ("lectures", "cnnlab_cold", "cnnlab_warm"):
        assert row[name]["seconds"] >= row[name]["seconds_to_accuracy"] > 0
        assert 0 <= row[name]["test_accuracy"] <= 1
    assert row["ratio_warm"] == pytest.approx(
        row["cnnlab_warm"]["seconds"] / row["lectures"]["seconds"], abs=1e-3)
    # the first run decodes every image, the second reads them all from the cache
    assert row["cnnlab_cold"]["decoded"].startswith("0 from the cache, 60 decoded")
    assert row["cnnlab_warm"]["decoded"].startswith("60 from the cache, 0 decoded")
    phases = row["cnnlab_cold"]["phases"]
    assert None not in phases.values()
    assert sum(phases.values()) == pytest.approx(row["cnnlab_cold"]["seconds"], abs=0.05)
    assert {"cold", "warm", "met"} <= result["target"].keys()
    assert "load_average" in result["machine"]
    markdown = (tmp_path / f"{result['created'][:10]}-whole-run-quick.md").read_text()
    assert "Where the seconds go" in markdown
