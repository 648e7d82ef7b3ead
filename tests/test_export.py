"""`cnnlab export`: each format answers as cnnlab does, the preprocessing JSON alone is enough
to reproduce a prediction, and every mistake is one sentence."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab import TrainConfig, train
from cnnlab.cli.main import main
from cnnlab.data import load_dataset

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}


def _copy(run, tmp_path: Path) -> Path:
    """The run's config and weights in a folder of this test's own, so that the exports
    written into it by default touch no run another test shares."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(run.run_dir) / name, folder / name)
    return folder


def _export(capsys, *argv) -> tuple[int, dict | None, str]:
    code = main(["export", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def _one_sentence(code: int, err: str, words: str) -> None:
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("cnnlab: ") and words in err, err


@pytest.mark.slow  # three exports (ONNX's alone takes several seconds)
@pytest.mark.parametrize("fmt", list(SUFFIX))
def test_each_format_answers_as_cnnlab_on_the_test_images(fmt, short_run, tmp_path, capsys):
    run = _copy(short_run, tmp_path)
    code, result, err = _export(capsys, str(run), "--format", fmt)
    assert code == 0, err
    assert result["output"] == str(run / f"model{SUFFIX[fmt]}") and Path(result["output"]).is_file()
    assert result["max_abs_diff"] <= 1e-4 and result["top1_agreement"] == 1.0
    assert result["parity_ok"] and result["parity_images"] == 16
    assert result["parity_source"] == "16 test images of digits"
    written = json.loads(Path(result["preprocessing"]).read_text())
    assert written["classes"] == [str(d) for d in range(10)]
    assert written["input"]["shape"] == [1, 1, 28, 28] and written["input"]["dtype"] == "float32"


@pytest.mark.slow  # an ONNX export
def test_onnx_runtime_reproduces_predict_from_the_json_alone(short_run, tmp_path, capsys):
    """What another program does with the two files: PIL, numpy and ONNX Runtime only."""
    import onnxruntime
    out = tmp_path / "digits.onnx"
    code, result, err = _export(capsys, str(short_run.run_dir), "--out", str(out),
                                "--dynamic-batch")
    assert code == 0, err
    assert result["input"]["shape"] == ["batch", 1, 28, 28] and result["top1_agreement"] == 1.0
    test = load_dataset("digits").test
    files = []
    for index in range(6):  # 8x8 digits as 64x64 scans: the resize step has work to do
        files.append(str(tmp_path / f"digit{index}.png"))
        Image.fromarray(test.images[index, 0].numpy()).resize((64, 64), Image.BICUBIC).save(files[-1])
    assert main(["predict", str(short_run.run_dir), *files, "--json", "--top-k", "10"]) == 0
    cnnlab = json.loads(capsys.readouterr().out)["predictions"]

    recipe = json.loads(Path(str(out) + ".preprocess.json").read_text())
    batch = np.stack([_follow(recipe["steps"], Image.open(file)) for file in files])
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = session.run([recipe["output"]["name"]], {recipe["input"]["name"]: batch})[0]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for ours, row in zip(cnnlab, probabilities):
        # PIL's resize and torchvision's may round a pixel differently: the whole answer
        # agrees to within a percentage point, and so does the class wherever it is not a tie
        theirs = {name: float(p) for name, p in zip(recipe["classes"], row)}
        assert all(abs(theirs[t["class"]] - t["probability"]) < 0.01 for t in ours["top"])
        first, second = ours["top"][0]["probability"], ours["top"][1]["probability"]
        if first - second > 0.01:
            assert recipe["classes"][row.argmax()] == ours["top"][0]["class"]


def _follow(steps: list[dict], image: Image.Image) -> np.ndarray:
    """The preprocessing JSON's steps, as a program without cnnlab or torch follows them."""
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
    for step in steps:
        kind = step["step"]
        if kind == "decode":
            image = image.convert(step["to"])
        elif kind == "resize":
            height, width = step["size"]
            image = image.resize((width, height), resample[step["interpolation"]])
        elif kind == "to_float":
            pixels = np.asarray(image, dtype=np.float32) * step["scale"]
            pixels = pixels[..., None] if pixels.ndim == 2 else pixels
        elif kind == "normalize":
            pixels = (pixels - np.float32(step["mean"])) / np.float32(step["std"])
        elif kind == "layout":
            pixels = pixels.transpose(2, 0, 1)
        else:
            raise AssertionError(f"a step this test does not know: {kind}")
    return pixels.astype(np.float32)


@pytest.mark.slow
def test_uint8_input_bakes_the_normalisation_in(short_run, tmp_path, capsys):
    import torch
    out = tmp_path / "pixels.pt2"
    code, result, err = _export(capsys, str(short_run.run_dir), "--format", "exported-program",
                                "--uint8-input", "--out", str(out))
    assert code == 0, err
    assert result["input"]["dtype"] == "uint8" and result["parity_ok"]
    recipe = json.loads(Path(result["preprocessing"]).read_text())
    assert [s["step"] for s in recipe["steps"]] == ["decode", "resize", "layout"]
    exported = torch.export.load(str(out)).module()
    with pytest.raises(Exception):  # the file expects uint8 pixels, as the JSON says
        exported(torch.zeros(1, 1, 28, 28))
    assert exported(torch.zeros(1, 1, 28, 28, dtype=torch.uint8)).shape == (1, 10)


@pytest.mark.slow
def test_an_earlier_export_is_replaced_and_any_other_file_is_not(short_run, tmp_path, capsys):
    out = tmp_path / "model.pt"
    for _ in range(2):  # exporting again is routine
        code, _, err = _export(capsys, str(short_run.run_dir), "--format", "torchscript",
                               "--out", str(out))
        assert code == 0, err
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"my own weights")
    code, _, err = _export(capsys, str(short_run.run_dir), "--format", "torchscript",
                           "--out", str(mine))
    _one_sentence(code, err, f"{mine} exists and was not written by cnnlab export")
    assert mine.read_bytes() == b"my own weights"
    Path(str(out) + ".preprocess.json").write_text('{"mine": true}\n')
    code, _, err = _export(capsys, str(short_run.run_dir), "--format", "torchscript",
                           "--out", str(out))
    _one_sentence(code, err, "model.pt.preprocess.json exists and was not written by cnnlab")


def _run_of_task(short_run, tmp_path: Path, task: str) -> Path:
    """A copy of the short run whose config.json claims another task: export must refuse it
    from the config alone, before loading any weights."""
    folder = _copy(short_run, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["train"]["task"] = task
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("task, words", [
    ("detect", "torchvision's detectors take a list of images of any size"),
    ("gan", "draws new images from noise"),
    ("superres", "luminance of an image of any size"),
])
def test_tasks_that_a_fixed_graph_cannot_express_are_refused(task, words, short_run, tmp_path,
                                                            capsys):
    code, _, err = _export(capsys, str(_run_of_task(short_run, tmp_path, task)))
    _one_sentence(code, err, f"is a {task} run, and export does not cover it: ")
    assert words in err


@pytest.mark.parametrize("argv, words", [
    (["--out", "model.onnx"], "give a run folder, or --pretrained MODEL, to export"),
    (["RUN", "--format", "exported-program", "--out", "x.onnx"],
     "must end in .pt2 for --format exported-program"),
    (["RUN", "--out", "no/such/folder/m.onnx"], "the folder no/such/folder does not exist"),
    (["nowhere"], "nowhere does not exist; give the run folder"),
    (["--pretrained", "lenet5"], "there are no pretrained weights for lenet5"),
    (["RUN", "--tolerance", "-1"], "--tolerance must be a number of at least 0, not -1.0"),
])
def test_mistakes_are_one_sentence_and_status_2(argv, words, short_run, capsys):
    argv = [str(short_run.run_dir) if a == "RUN" else a for a in argv]
    code, _, err = _export(capsys, *argv)
    _one_sentence(code, err, words)


def test_help_imports_no_torch():
    code = ("import sys; from cnnlab.cli.main import build_parser; "
            "build_parser('export').parse_args(['export', '--help'])")
    done = subprocess.run([sys.executable, "-c", code + "\n"], capture_output=True, text=True)
    assert "--dynamic-batch" in done.stdout and "--uint8-input" in done.stdout
    probe = ("import sys; from cnnlab.cli.main import build_parser; build_parser('export'); "
             "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True,
                          text=True).stdout.strip() == "False"


@pytest.mark.slow  # trains a U-Net for two batches
def test_segmentation_agrees_pixel_by_pixel(tmp_path, capsys):
    run = train(TrainConfig(task="segment", model="unet", dataset="shapes", epochs=1,
                            limit_batches=2, out=str(tmp_path / "seg")), quiet=True)
    code, result, err = _export(capsys, str(run.run_dir), "--format", "onnx")
    assert code == 0, err
    assert result["agreement_of"] == "pixels" and result["top1_agreement"] == 1.0
    assert result["max_abs_diff"] <= 1e-4
    recipe = json.loads(Path(result["preprocessing"]).read_text())
    assert recipe["output"]["shape"] == [1, len(recipe["classes"]), 32, 32]


@pytest.mark.slow  # ResNet-18 trained for an epoch of digits, then two exports
def test_resnet18_onnx_and_exported_program(tmp_path, capsys):
    run = train(TrainConfig(model="resnet18", epochs=1, out=str(tmp_path / "r18")), quiet=True)
    for fmt in ("onnx", "exported-program"):
        code, result, err = _export(capsys, str(run.run_dir), "--format", fmt, "--dynamic-batch")
        assert code == 0, err
        assert result["max_abs_diff"] <= 1e-4 and result["top1_agreement"] == 1.0
        assert result["parity_ok"]


@pytest.mark.slow  # ImageNet's EfficientNet-Lite0 at 224x224, two exports
def test_pretrained_efficientnet_lite0_on_photographs(tmp_path, capsys):
    for fmt, suffix in (("onnx", "onnx"), ("exported-program", "pt2")):
        out = tmp_path / f"lite0.{suffix}"
        code, result, err = _export(capsys, "--pretrained", "efficientnet_lite0",
                                    "--format", fmt, "--out", str(out))
        assert code == 0, err
        assert result["parity_source"].startswith("8 photographs")
        assert result["max_abs_diff"] <= 1e-4 and result["top1_agreement"] == 1.0
        recipe = json.loads(Path(result["preprocessing"]).read_text())
        assert len(recipe["classes"]) == 1000
        assert [s["step"] for s in recipe["steps"]][:3] == ["decode", "resize_shorter_side",
                                                            "center_crop"]
