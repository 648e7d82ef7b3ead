"""Issue 21's edges, each once failing: every user-caused failure is one sentence and exit
status 2 (or 130 for Ctrl-C), never a traceback."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open

from cnnlab.cli.main import build_parser, config_from_args, main
from cnnlab.data import load_dataset
from cnnlab.data.files import csv_listing
from cnnlab.errors import UserError
from cnnlab.runs.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.runs.lock import training_lock
from cnnlab.runs.resume import RESUMES_FROM, load_newest


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.3, 1.0, 1.5, 2.0, 2.5])
def test_ctrl_c_while_cnnlab_is_still_importing_is_not_a_traceback(tmp_path, after):
    process = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--epochs", "1",
                                "--out", str(tmp_path / "run")], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert "Traceback" not in err
    if "model saved in" in err:  # a fast machine had finished: Ctrl-C came during exit
        assert process.returncode in (0, 130), err
    elif "training " in err:  # it had finished importing: the run's own Ctrl-C
        assert process.returncode == 130, err
        assert "cnnlab train --resume" in err
    else:
        assert process.returncode == 130, err
        assert len(err.strip().splitlines()) == 1, err


# The program as `cnnlab` runs it, with Python's exit held open (atexit runs its callbacks
# last-registered first, so this one runs after torch's): a Ctrl-C lands there for sure.
SLOW_EXIT = """import atexit, sys, time
atexit.register(time.sleep, 5)
atexit.register(print, "exiting", file=sys.stderr, flush=True)
from cnnlab.cli import main
sys.argv = ["cnnlab", *sys.argv[1:]]
sys.exit(main())
"""


@pytest.mark.slow
def test_ctrl_c_while_python_shuts_down_after_the_result_is_exit_130(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", SLOW_EXIT, "train", "--epochs", "1",
                                "--limit-batches", "2", "--out", str(tmp_path / "run")],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in process.stderr:
        if line.startswith("exiting"):
            break
    process.send_signal(signal.SIGINT)
    err = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 130 and err.strip() == "cnnlab: interrupted.", err
    assert (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("flags, words", [
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--momentum", "nan"], "--momentum must be a finite number"),
    (["--seed", "99999999999999999999"], "--seed must be a whole number from 0"),
    (["--seed", "-1"], "--seed must be a whole number from 0"),
    (["--workers", "1000"], "--workers must be -1"),
    (["--workers", "-5"], "--workers must be -1"),
])
def test_numbers_no_run_can_use_are_one_sentence(tmp_path, capsys, flags, words):
    assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model, option, words", [
    ("lenet5", "activation=[1]", "option activation takes a name"),
    ("cifar_fast", "widths=abc", "option widths takes a list"),
    ("cifar_fast", "widths=[64,x,3]", "takes a list of whole numbers"),
    ("cifar_fast", "widths=[-1,2,3]", "cannot be built with widths=[-1, 2, 3]"),
    ("vgg11", "dropout=2", "dropout probability has to be between 0 and 1"),
    ("lecture_cnn", "dropout=0.5", "it takes no options"),
])
def test_model_options_of_the_wrong_kind_or_range_are_one_sentence(tmp_path, capsys, model,
                                                                   option, words):
    assert main(["train", "--model", model, "--model-kwargs", option, "--epochs", "1",
                 "--limit-batches", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content, words", [
    (b"epochs: true\n", "epochs must be a number"),
    (b"# r\xe9glages\nepochs: 2\n", "is not UTF-8 text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not UTF-8 text"),
])
def test_config_files_cnnlab_cannot_use_are_one_sentence(tmp_path, capsys, content, words):
    (tmp_path / "settings.yaml").write_bytes(content)
    assert main(["train", "--config", str(tmp_path / "settings.yaml"),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_a_runs_own_config_json_is_a_config_file(tmp_path):
    values = {"cnnlab_version": "0.1.0", "classes": ["0", "1"], "model": {}, "preprocess": {},
              "train": {"model": "lenet5", "epochs": 7, "out": "runs/old", "resume": None}}
    (tmp_path / "config.json").write_text(json.dumps(values))
    args = build_parser().parse_args(["train", "--config", str(tmp_path / "config.json")])
    config = config_from_args(args)
    assert (config.model, config.epochs, config.out) == ("lenet5", 7, None)


def test_an_out_folder_holding_a_run_is_refused_before_the_data_is_read(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    (tmp_path / "run" / "model.safetensors").write_bytes(b"a finished run's weights")
    # the data set does not exist either: the run folder is what is said first
    assert main(["train", "--dataset", f"folder:{tmp_path / 'nowhere'}",
                 "--out", str(tmp_path / "run")]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_resuming_past_a_damaged_newest_checkpoint_says_which_was_used(tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    save_checkpoint(folder / "epoch-0001-step-000000.safetensors", _complete(1))
    (folder / "epoch-0002-step-000000.safetensors").write_bytes(b"cut short by a crash")
    assert load_newest(tmp_path)["epoch"] == 1
    assert "resuming from epoch-0001-step-000000.safetensors" in caplog.text
    assert "epoch-0002-step-000000.safetensors" in caplog.text


def _complete(epoch: int) -> dict:
    """A checkpoint with every entry a resume reads (their values do not matter here)."""
    return {**{key: [1] for key in RESUMES_FROM}, "epoch": epoch,
            "model": {"weight": torch.ones(2)}}


@pytest.mark.parametrize("spoil, words", [
    (lambda state: state.pop("epoch"), "it lacks epoch"),
    (lambda state: state.update(epoch="two"), "a valid epoch"),
    (lambda state: state.pop("optimizer"), "it lacks optimizer"),
])
def test_a_checkpoint_lacking_what_resume_needs_is_passed_over_saying_why(tmp_path, caplog,
                                                                         capsys, spoil, words):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    save_checkpoint(folder / "epoch-0001-step-000000.safetensors", _complete(1))
    spoiled = _complete(2)
    spoil(spoiled)
    save_checkpoint(folder / "epoch-0002-step-000000.safetensors", spoiled)
    assert load_newest(tmp_path)["epoch"] == 1
    assert words in caplog.text
    (folder / "epoch-0001-step-000000.safetensors").unlink()  # the spoiled one is all there is
    with pytest.raises(UserError, match="none of the checkpoints"):
        load_newest(tmp_path)


def test_a_checkpoint_missing_a_tensor_is_one_sentence(tmp_path):
    from safetensors.torch import load_file, save_file
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, _complete(1))
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(UserError, match="is not a complete cnnlab checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("edit, command, words", [
    (lambda c: c.update(classes=c["classes"][:5]), "predict", "lists 5 classes for a model with 10"),
    (lambda c: c["preprocess"].update(size=[0, -3]), "predict", "the image size [0, -3]"),
    (lambda c: c.update(model={}), "predict", "num_classes and in_channels"),
    (lambda c: c.pop("preprocess"), "evaluate", "it has no 'preprocess'"),
    (lambda c: c["train"].update(model="lecture_cnn"), "predict", "do not fit the model"),
    (lambda c: c["train"].update(model="resnet20"), "resume", "the checkpoints of"),
])
def test_a_hand_edited_config_json_is_one_sentence(short_run, tmp_path, capsys, edit, command,
                                                   words):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(short_run.run_dir, run)
    values = json.loads((run / "config.json").read_text())
    edit(values)
    (run / "config.json").write_text(json.dumps(values))
    picture = tmp_path / "digit.png"
    Image.new("L", (8, 8), 128).save(picture)
    argv = {"predict": ["predict", str(run), str(picture)], "evaluate": ["evaluate", str(run)],
            "resume": ["train", "--resume", str(run)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A finished 1-epoch run under onecycle (the default) and one under no schedule."""
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("onecycle", []), ("constant", ["--scheduler", "none"])):
        assert main(["train", "--model", "lenet5", "--epochs", "1", "--limit-batches", "2",
                     "--out", str(root / name), "--quiet", *extra]) == 0
    return root


@pytest.mark.slow
def test_extending_a_run_under_a_length_shaped_schedule_is_refused_saying_how(two_runs, capsys):
    run = two_runs / "onecycle"
    before = (run / "config.json").read_text()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume exactly" in err and "--weights-file" in err
    assert main(["train", "--resume", str(run), "--epochs", "0"]) == 2
    assert (run / "config.json").read_text() == before


@pytest.mark.slow
def test_a_run_without_a_schedule_extends_and_repeated_flags_are_not_changes(two_runs, capsys):
    run = two_runs / "constant"
    assert main(["train", "--resume", str(run), "--epochs", "2", "--dataset", "digits",
                 "--model", "lenet5", "--quiet"]) == 0
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    assert main(["train", "--resume", str(run), "--dataset", "shapes"]) == 2
    assert "--dataset cannot be changed" in capsys.readouterr().err


def _png_folder(root, counts: dict[str, int], first: int = 0):
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(first, first + count):
            Image.new("L", (8, 8), 40 * i % 255).save(root / name / f"{i}.png")
    return root


def test_an_empty_class_folder_is_named_not_made_a_class(tmp_path, capsys):
    root = _png_folder(tmp_path / "imgs", {"cat": 5, "dog": 5})
    (root / "bird").mkdir()
    assert main(["train", "--dataset", f"folder:{root}", "--out", str(tmp_path / "r")]) == 2
    assert "bird has no files" in capsys.readouterr().err


def test_a_one_class_folder_cannot_train_a_classifier(tmp_path, capsys):
    root = _png_folder(tmp_path / "imgs", {"cat": 6})
    assert main(["train", "--dataset", f"folder:{root}", "--out", str(tmp_path / "r")]) == 2
    assert "has one class (cat)" in capsys.readouterr().err


def test_a_class_too_small_to_split_is_named(tmp_path, caplog):
    root = _png_folder(tmp_path / "imgs", {"cat": 10, "dog": 10, "eel": 1})
    splits = load_dataset(f"folder:{root}")
    assert "class eel has a single image" in caplog.text
    if 2 not in splits.train.labels.tolist():
        assert "no training image of eel" in caplog.text


def test_csv_rows_are_numbered_as_in_the_file_and_a_file_with_two_labels_is_skipped(tmp_path):
    _png_folder(tmp_path, {"img": 2})
    (tmp_path / "list.csv").write_text("path,label\nimg/0.png,cat\n,dog\nimg/1.png,dog\n"
                                       "img/0.png,dog\n")
    listing = csv_listing(tmp_path / "list.csv")
    assert len(listing.files) == 2
    assert [row for row, _ in listing.problems] == [f"{tmp_path / 'list.csv'} row 3",
                                                   f"{tmp_path / 'list.csv'} row 5"]
    assert "row 2 gave it label cat" in listing.problems[1][1]


@pytest.mark.parametrize("model, source, words", [
    (":MyNet", None, "must name a module"),
    ("broken_net:Net", "raise RuntimeError('no GPU here')\n", "RuntimeError: no GPU here"),
    ("typo_net:Net", "def f(:\n", "SyntaxError"),
])
def test_a_users_model_module_that_cannot_load_is_one_sentence(tmp_path, monkeypatch, capsys,
                                                                model, source, words):
    monkeypatch.chdir(tmp_path)
    if source:
        (tmp_path / f"{model.split(':')[0]}.py").write_text(source)
    assert main(["summary", model]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_a_summary_input_too_large_to_allocate_is_refused_first(capsys):
    assert main(["summary", "lenet5", "--input", "1x1000000000x1000000000"]) == 2
    assert "values per image" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_folder_being_trained_is_refused_to_a_second_process(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--epochs", "200",
                              "--checkpoint-every", "1", "--out", str(run), "--quiet"],
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not list((run / "checkpoints").glob("*.safetensors")):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--resume", str(run)],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"being trained by another process (pid {first.pid})" in second.stderr
    finally:
        first.kill()
        first.wait()
    with training_lock(run):  # SIGKILL ended the first process, and its lock with it
        pass


@pytest.mark.parametrize("command", ["predict", "filters", "featuremaps"])
def test_weights_file_with_a_run_folder_is_refused_not_ignored(short_run, tmp_path, capsys,
                                                              command):
    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    argv = {"predict": ["predict", str(short_run.run_dir), str(image)],
            "filters": ["filters", str(short_run.run_dir)],
            "featuremaps": ["featuremaps", str(short_run.run_dir), str(image)]}[command]
    assert main([*argv, "--weights-file", str(short_run.run_dir / "model.safetensors")]) == 2
    assert "--weights-file goes with --pretrained" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_during_the_final_test_is_honoured_and_resume_finishes(tmp_path, capsys,
                                                                      monkeypatch):
    import cnnlab.training.session as session
    real_evaluate = session.evaluate

    def evaluate_then_get_sigterm(*args, **kwargs):  # the signal lands mid-evaluation
        os.kill(os.getpid(), signal.SIGTERM)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(session, "evaluate", evaluate_then_get_sigterm)
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--limit-batches", "2", "--out", str(run)]) == 143
    err = capsys.readouterr().err
    assert "stopped during the test evaluation" in err and f"--resume {run}" in err
    monkeypatch.setattr(session, "evaluate", real_evaluate)
    assert main(["train", "--resume", str(run), "--json"]) == 0
    assert "test_accuracy" in json.loads(capsys.readouterr().out)


def test_out_at_a_folder_of_other_files_is_refused_and_they_stay(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["train", "--out", str(tmp_path / "mine")]) == 2
    assert "files that are not a run" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_a_run_that_stopped_before_its_first_checkpoint_does_not_block_its_folder(tmp_path,
                                                                                  caplog, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")  # what a start that hit a nan at once leaves
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
    assert main(["train", "--epochs", "1", "--limit-batches", "2", "--out", str(run),
                 "--quiet"]) == 0
    assert "stopped before its first checkpoint" in caplog.text
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "train_loss" in lines[0]
    killed = tmp_path / "killed"  # a real run's folder, killed before its first checkpoint
    killed.mkdir()
    (killed / "config.json").write_bytes((run / "config.json").read_bytes())
    assert main(["train", "--resume", str(killed)]) == 2  # nothing to resume: says what to do
    assert "run the command that started it again" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--lr", "inf"], ["evaluate", "no-such-run"],
                                  ["summary", ":Net"]])
def test_json_commands_say_a_failure_on_stdout_too(argv, capsys):
    assert main([*argv, "--json"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error and error in captured.err


@pytest.mark.fastpath
def test_layouts_are_timed_on_batches_no_larger_than_the_data_set(tmp_path, monkeypatch):
    from cnnlab.accel import fastpath, layout
    timed = []
    real = layout.choose_layout

    def recording(model, input_shape, batch_size, *args, **kwargs):
        timed.append(batch_size)
        return real(model, input_shape, batch_size, *args, **kwargs)

    monkeypatch.setattr(layout, "choose_layout", recording)
    # a run of one step is too short to pay for timing: time it anyway, as a long run would
    monkeypatch.setattr(fastpath, "_too_short", lambda *args, **kwargs: "")
    assert main(["train", "--batch-size", "100000", "--epochs", "1", "--out",
                 str(tmp_path / "run"), "--quiet"]) == 0
    assert timed and max(timed) == 1257  # digits' training images, not 100,000


NUMERIC_FLAGS = ["--lr", "--momentum", "--weight-decay", "--label-smoothing", "--ema",
                 "--clip-grad", "--seed", "--workers", "--batch-size", "--limit-batches",
                 "--checkpoint-every", "--keep", "--step-size", "--gamma", "--epochs"]
NUMBERS = st.one_of(st.integers(-10**20, 10**20), st.integers(-3, 40),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["1e-3", "0.9", "-0", "1e400", "abc", "", "0x10", "1_000"]))


@pytest.mark.slow
@settings(max_examples=15, deadline=None, phases=[Phase.generate], derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(NUMERIC_FLAGS), value=NUMBERS,
       where=st.sampled_from(["flag", "file"]))
def test_any_number_in_a_flag_or_config_file_trains_one_batch_or_is_one_sentence(
        tmp_path_factory, capsys, flag, value, where):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    if flag in ("--epochs", "--limit-batches") and isinstance(value, int) and value > 2:
        value = 2  # a valid run of millions of steps is not a smoke step
    if where == "flag":
        given_ = [flag, str(value)]
    else:
        config = out.parent / "c.yaml"
        config.write_text(yaml.safe_dump({flag[2:].replace("-", "_"): value}))
        given_ = ["--config", str(config)]
    argv = ["train", *given_, "--out", str(out), "--quiet"]
    if flag != "--epochs":
        argv += ["--epochs", "1"]
    if flag != "--limit-batches":
        argv += ["--limit-batches", "1"]
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's own refusal of a flag's type: usage and one line
        status = stop.code
    err = capsys.readouterr().err
    assert status in (0, 2), err
    assert "Traceback" not in err
    if status == 2 and not err.startswith("usage:"):
        assert len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_no_room_on_the_disk_is_one_sentence_and_loses_nothing(tmp_path):
    """A file size limit (ulimit -f) fails a write as a full disk does: the checkpoint does not
    fit, what was written before stays whole, and no temporary is left behind."""
    import resource

    def small_files_only():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--epochs", "1",
                           "--limit-batches", "1", "--out", str(run)], preexec_fn=small_files_only,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("cnnlab: error: there is no room to write") and "Traceback" not in \
        done.stderr, done.stderr
    assert "nothing was lost" in last
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 1
    assert not [p for p in run.rglob("*") if ".cnnlab-tmp-" in p.name]


def test_a_run_evaluated_in_another_number_format_than_it_trained_in_says_so(short_run, tmp_path,
                                                                           capsys, caplog):
    """A run trained on a GPU in fp16, evaluated on a CPU (which has no fp16 matrix units)."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(short_run.run_dir, run)
    values = json.loads((run / "config.json").read_text())
    values["train"]["precision"] = "fp16"
    (run / "config.json").write_text(json.dumps(values))
    assert main(["evaluate", str(run), "--device", "cpu", "--json"]) == 0
    captured = capsys.readouterr()
    assert "this run trained in fp16" in caplog.text and "evaluated in fp32" in caplog.text
    assert json.loads(captured.out)["accuracy"] > 0


@pytest.mark.slow
def test_quiet_and_verbose_set_how_much_the_cnnlab_logger_says(tmp_path):
    def train(*flags):
        return subprocess.run([sys.executable, "-m", "cnnlab", "train", "--epochs", "1",
                               "--limit-batches", "2", "--out", str(tmp_path / flags[0]),
                               *flags], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    verbose, quiet = train("--verbose"), train("--quiet")
    assert verbose.returncode == quiet.returncode == 0
    assert "test accuracy" in verbose.stderr and "checkpoint" in verbose.stderr
    assert "cnnlab train took" in verbose.stderr
    assert quiet.stderr == ""
    both = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--quiet", "--verbose"],
                          capture_output=True, text=True)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


@pytest.mark.parametrize("argv, words", [
    (["conv-shape", "--input-size", "32", "--kernel-size", "2", "--pool", "sum"],
     "unknown pooling 'sum'; choose max or avg"),
    (["report", "{file}"], "is a file, not a run folder"),
    (["report", "{missing}"], "does not exist; give the run folder"),
    (["predict", "{file}", "{file}"], "is a file, not a run folder"),
    (["train", "--weights-file", "{folder}", "--epochs", "1"], "is a folder, not a weights file"),
    (["kernels", "{tiny}", "--kernel", "sobel-x"], "too small to reflect around a 3x3 kernel"),
])
def test_wrong_kinds_of_paths_and_names_say_what_is_wrong(tmp_path, capsys, argv, words):
    Image.new("RGB", (1, 1)).save(tmp_path / "tiny.png")
    (tmp_path / "notes.txt").write_text("not a run")
    paths = {"file": tmp_path / "notes.txt", "missing": tmp_path / "nowhere",
             "folder": tmp_path, "tiny": tmp_path / "tiny.png"}
    assert main([word.format(**paths) for word in argv]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err


def test_help_says_each_default_once_and_leaves_out_what_a_command_sets_itself():
    train = _help("train")
    assert "(default: None)" not in train and "architecture's own (default" not in train
    compare = _help("transfer-compare")
    flags = {line.split()[0] for line in compare.splitlines() if line.startswith("  --")}
    assert "--transfer" not in flags and "--resume" not in flags and "--task" not in flags
    assert "--pretrained" in flags


def _help(command: str) -> str:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return sub.format_help()


def test_a_height_by_width_summary_input_says_how_it_was_read(capsys, caplog):
    caplog.set_level("INFO", logger="cnnlab")
    assert main(["summary", "lenet5", "--input", "28x28"]) == 0
    assert "--input 28x28 read as height x width: 1x28x28" in caplog.text


def test_evaluate_measures_the_runs_own_test_images_after_the_folder_changed(tmp_path, capsys,
                                                                             caplog):
    root = _png_folder(tmp_path / "imgs", {"cat": 10, "dog": 10})
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{root}", "--epochs", "1", "--limit-batches", "1",
                 "--out", str(run), "--quiet"]) == 0
    recorded = json.loads((run / "split.json").read_text())
    test_files = recorded["test"]["files"]
    assert len(test_files) == 4 and not set(test_files) & set(recorded["train"]["files"])
    _png_folder(root, {"cat": 6}, first=100)  # new photographs arrive after training
    Path(test_files[0]).unlink()              # and one test image is deleted
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 3 and report["missing_files"] == 1 and report["new_files"] == 6
    assert "6 file(s) were added" in caplog.text and "1 of the 4 files" in caplog.text


def test_evaluate_of_a_built_in_set_checks_its_split_is_the_runs(short_run, capsys):
    assert main(["evaluate", str(short_run.run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split_unchanged"] is True


def test_one_step_of_onecycle_says_it_never_reaches_the_rate(tmp_path, caplog):
    """torch's one-cycle over a single step runs at 4e-6 of --lr: the run says so."""
    assert main(["train", "--model", "lenet5", "--epochs", "1", "--limit-batches", "1",
                 "--out", str(tmp_path / "one"), "--quiet"]) == 0
    warned = [r.getMessage() for r in caplog.records if "one-cycle" in r.getMessage()]
    assert len(warned) == 1 and "never comes near --lr 0.01" in warned[0], warned
    assert "--scheduler none" in warned[0]
    caplog.clear()  # two steps reach 0.81 of the rate: no word
    assert main(["train", "--model", "lenet5", "--epochs", "1", "--limit-batches", "2",
                 "--out", str(tmp_path / "two"), "--quiet"]) == 0
    assert not [r for r in caplog.records if "one-cycle" in r.getMessage()]


def test_model_options_joined_by_commas_are_told_to_use_spaces(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--model-kwargs", "backbone=lenet5,grid=4", "--out", str(tmp_path / "r")])
    assert stopped.value.code == 2
    assert "separate them with spaces: backbone=lenet5 grid=4" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
