"""The fast path: layout chosen by timing and remembered, number formats, compile, threads."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnlab import TrainConfig, train
from cnnlab.accel import fastpath, layout, precision
from cnnlab.cli.main import main
from cnnlab.data.memory import TensorBatches
from cnnlab.engine.loop import train_one_epoch
from cnnlab.tasks.classify import Classify
from cnnlab.errors import UserError
from cnnlab.accel.precision import Precision, resolve_precision

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Layout choices remembered in this test's folder, not the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def test_timing_layouts_leaves_the_model_and_the_random_numbers_alone():
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    seconds = layout.time_layouts(model, (3, 16, 16), 4, precision.FP32)
    after_timing = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after_timing, torch.rand(3))
    assert set(seconds) == {"contiguous", "channels_last"} and min(seconds.values()) > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _record_steps(model, seen):
    """Note, at every forward pass of `model` or a copy of it: is its convolution in
    channels_last, and how many threads torch computes with."""
    model.register_forward_pre_hook(lambda m, args: seen.append(
        (m[0].weight.is_contiguous(memory_format=torch.channels_last), torch.get_num_threads())))
    return model


def test_layouts_take_turns_and_are_timed_with_the_runs_threads():
    """torch.utils.benchmark.Timer computes with 1 thread unless told otherwise."""
    seen, threads = [], torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        layout.time_layouts(_record_steps(_net(), seen), (3, 16, 16), 4, precision.FP32)
    finally:
        torch.set_num_threads(threads)
    turns = [cl for i, (cl, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != cl]
    assert {n for _, n in seen} == {2}
    assert len(turns) >= 4 and set(turns) == {True, False}  # each layout in several turns


def test_a_model_too_slow_for_the_budget_is_timed_in_one_turn_per_layout(monkeypatch):
    monkeypatch.setattr(layout, "BUDGET", 0.0)
    seen = []
    seconds = layout.time_layouts(_record_steps(_net(), seen), (3, 16, 16), 4, precision.FP32)
    steps = [cl for cl, _ in seen]
    assert min(seconds.values()) > 0
    assert steps.count(True) < layout.BLOCK and steps.count(False) < layout.BLOCK


@pytest.mark.parametrize("seconds, chosen", [
    ({"contiguous": 1.0, "channels_last": 0.5}, "channels_last"),
    ({"contiguous": 1.0, "channels_last": 0.95}, "contiguous"),   # within the noise margin
    ({"contiguous": 1.0, "channels_last": 2.0}, "contiguous"),
])
def test_channels_last_is_chosen_only_when_clearly_faster(seconds, chosen):
    assert layout.faster_layout(seconds) == chosen


def test_a_layout_choice_is_measured_once_then_remembered(monkeypatch):
    calls = []
    monkeypatch.setattr(layout, "time_layouts", lambda *args: calls.append(1) or
                        {"contiguous": 2.0, "channels_last": 1.0})
    first = layout.choose_layout(_net(), (3, 16, 16), 4, precision.FP32)
    second = layout.choose_layout(_net(), (3, 16, 16), 4, precision.FP32)
    other_batch = layout.choose_layout(_net(), (3, 16, 16), 8, precision.FP32)
    assert first == second == other_batch and first[0] == "channels_last"
    assert len(calls) == 2  # the same model and batch size were not timed again
    assert layout.cache_file().is_file()


def test_inference_layout_is_timed_on_forward_passes_apart_from_training(monkeypatch):
    timed = []  # (training?, the copies' modes) of each timing
    real = layout.time_layouts

    def spy(model, input_shape, batch_size, precision, training=True):
        timed.append(training)
        return real(model, input_shape, batch_size, precision, training)
    monkeypatch.setattr(layout, "time_layouts", spy)
    model = _net().eval()
    expected = model(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    chosen, number_format = fastpath.for_inference(model, (3, 16, 16), 1)
    again, _ = fastpath.for_inference(model, (3, 16, 16), 1)    # remembered
    layout.choose_layout(_net(), (3, 16, 16), 1, precision.FP32)  # training: its own entry
    assert timed == [False, True] and chosen == again and number_format.name == "fp32"
    fmt = layout.FORMATS[chosen]
    assert model[0].weight.is_contiguous(memory_format=fmt)
    assert not model.training  # timing copies, never the model itself
    got = model(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(got, expected)  # same answers in either layout


def test_a_run_too_short_to_pay_for_timing_trains_in_the_default_and_says_why(
        tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "time_layouts", lambda *a, **k: pytest.fail("timed layouts"))
    result = train(TrainConfig(model="lecture_cnn", epochs=1, limit_batches=2,
                               out=str(tmp_path / "run")), quiet=True)
    config = json.loads((result.run_dir / "config.json").read_text())["train"]
    record = json.loads((result.run_dir / fastpath.RECORD).read_text())
    assert (config["memory_format"], config["precision"]) == ("contiguous", "fp32")
    assert (record["memory_format"], record["precision"]) == ("contiguous", "fp32")
    assert record["step_seconds"] == {} and record["chosen_by"].startswith("run too short")


def test_a_long_run_is_timed_and_a_short_one_then_takes_the_remembered_choice(monkeypatch):
    """Layout and number format timed for a run of unknown length (steps None), recorded
    with their measurements; the same model, batch and machine later: no timing, even for a
    run too short to pay for one."""
    timings = []
    real = layout.time_layouts
    monkeypatch.setattr(layout, "time_layouts",
                        lambda *a, **k: timings.append(1) or real(*a, **k))
    config = TrainConfig(batch_size=4)
    first_config, first = fastpath.setup(config, _net(), (3, 16, 16), CPU)
    formats = precision.candidate_precisions("auto", CPU)
    assert first.chosen_by == "timing" and len(timings) == len(formats)
    assert first_config.precision in formats
    assert set(first.step_seconds) == {f"{fmt} {name}" for fmt in layout.FORMATS
                                       for name in formats}
    again_config, again = fastpath.setup(config, _net(), (3, 16, 16), CPU, steps=2)
    assert len(timings) == len(formats) and again.chosen_by.startswith("remembered")
    assert (again_config.memory_format, again_config.precision) == (
        first_config.memory_format, first_config.precision)
    assert again.step_seconds == first.step_seconds and "remembered" in again.describe()


def test_deterministic_runs_never_choose_by_timing(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "time_layouts", lambda *a: pytest.fail("timed a layout"))
    result = train(TrainConfig(epochs=1, limit_batches=1, deterministic=True,
                               out=str(tmp_path / "run")), quiet=True)
    assert json.loads((result.run_dir / "config.json").read_text())["train"][
        "memory_format"] == "contiguous"


def test_bf16_on_a_cpu_without_it_is_refused_in_one_sentence(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(UserError, match="native bf16.*20x slower"):
        resolve_precision("bf16", CPU)
    assert main(["train", "--precision", "bf16", "--out", str(tmp_path / "r")]) == 2
    assert "20x slower" in capsys.readouterr().err
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_fp16_is_refused_on_a_cpu_and_auto_means_fp32_there():
    with pytest.raises(UserError, match="CUDA"):
        resolve_precision("fp16", CPU)
    assert resolve_precision("auto", CPU) == "fp32"


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_mixed_precision_steps_compute_in_16_bits_and_learn(name):
    """The engine's autocast and (fp16) loss scaling, exercised on the CPU with a tiny net."""
    model, seen = _net(), []
    model[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    amp = Precision(name, "cpu")
    first = train_one_epoch(model, TensorBatches(x, y, 16), Classify(), optimizer,
                            precision=amp, clip_grad=1.0)
    for _ in range(8):
        last = train_one_epoch(model, TensorBatches(x, y, 16), Classify(), optimizer,
                               precision=amp)
    assert set(seen) == {precision.DTYPES[name]}
    assert model[0].weight.dtype == torch.float32  # the weights stay float32
    assert last["train_loss"] < first["train_loss"]


def test_threads_never_exceed_the_usable_cpus():
    threads = fastpath.configure_threads()
    assert 1 <= threads <= fastpath.usable_cpus() and threads == torch.get_num_threads()


def test_compile_is_timed_apart_and_leaves_batch_norm_statistics_alone(monkeypatch):
    """torch.compile itself is stubbed (compiling takes a minute on a CPU): what is checked
    is that the warm-up step is timed and leaves no trace in the model."""
    model = _net()
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seconds = fastpath.compile_model(model, (3, 8, 8), 4, precision.FP32)
    assert seconds > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("bf16_seconds, chosen", [(0.5, ("channels_last", "bf16")),
                                                  (0.95, ("channels_last", "fp32"))])
def test_auto_on_a_bf16_cpu_keeps_bf16_only_where_it_times_clearly_faster(
        monkeypatch, bf16_seconds, chosen):
    """Layout and number format are chosen together; bf16 must save MARGIN, as channels_last must."""
    monkeypatch.setattr(fastpath, "candidate_precisions", lambda name, device: ["fp32", "bf16"])
    timings = {"fp32": {"contiguous": 2.0, "channels_last": 1.0},
               "bf16": {"contiguous": 3.0, "channels_last": bf16_seconds}}
    monkeypatch.setattr(layout, "time_layouts", lambda model, shape, batch, p, training=True:
                        dict(timings[p.name]))
    model = _net()
    config, fast = fastpath.setup(TrainConfig(batch_size=4), model, (3, 16, 16), CPU)
    assert (config.memory_format, config.precision) == chosen
    assert (fast.memory_format, fast.precision.name) == chosen
    assert fast.step_seconds["channels_last bf16"] == bf16_seconds
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("fp32_seconds, exact, expected", [
    (0.5, False, "fp32"), (0.95, False, "bf16"),
    (0.5, True, "bf16")])  # evaluate: training's format, however fast fp32 is
def test_a_bf16_trained_model_predicts_in_bf16_unless_fp32_is_clearly_faster(
        monkeypatch, fp32_seconds, exact, expected):
    timings = {"bf16": {"contiguous": 1.0, "channels_last": 2.0},
               "fp32": {"contiguous": fp32_seconds, "channels_last": 2.0}}
    monkeypatch.setattr(layout, "time_layouts", lambda model, shape, batch, p, training=True:
                        dict(timings[p.name]))
    chosen, number_format = fastpath.for_inference(_net().eval(), (3, 16, 16), 1,
                                                   Precision("bf16", "cpu"), exact=exact)
    assert (chosen, number_format.name) == ("contiguous", expected)
