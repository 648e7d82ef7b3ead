"""Clocks, memory and arithmetic: what a contender's steps cost.

Memory is counted tensor by tensor, the same way on every device, for one step of the model:
training holds the weights, their gradients, SGD's momentum and every activation autograd
saves for backward; inference holds the weights and, at its widest layer, that layer's
input and output. (Allocators add their own slack on top; a GPU's measured peak is in the
JSON beside it.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..tasks.classify import Classify
from ..accel.layout import clock, torch_benchmark
from ..models import create_model

MB = 2**20


def timed(device: torch.device, work) -> float:
    """Wall seconds of `work()`, with the GPU's queue drained before and after."""
    now = clock(device)
    start = now()
    work()
    return now() - start


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def training_memory_mb(model: nn.Module, inputs, labels, precision) -> float:
    """Weights, gradients and momentum (3 copies of the weights) plus the tensors autograd
    saves for backward in one step, each storage counted once."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with precision.autocast():
            loss, _ = Classify().loss(model.train()(inputs), labels)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return (3 * _bytes(model.parameters()) + sum(saved.values()) + _bytes([inputs])) / MB


def inference_memory_mb(model: nn.Module, inputs, precision) -> float:
    """Weights plus the widest layer's input and output."""
    widest = [0]

    def hook(module, args, output):
        flat = [t for t in (*args, output) if isinstance(t, torch.Tensor)]
        widest[0] = max(widest[0], _bytes(flat))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad(), precision.autocast():
            model.eval()(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return (_bytes(model.parameters()) + widest[0]) / MB


def flops_per_image(workload, training: bool) -> float:
    """Floating-point operations per image (a multiply-add counts 2): forward, plus backward
    when training. Counted by torch's FlopCounterMode on the meta device, so nothing runs."""
    batch = 2
    with torch.device("meta"):
        model = create_model(workload.model, num_classes=10, in_channels=workload.input_shape[0],
                             **workload.model_kwargs).train(training)
        inputs = torch.zeros(batch, *workload.input_shape)
        labels = torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        if training:
            F.cross_entropy(model(inputs), labels).backward()
        else:
            with torch.no_grad():
                model(inputs)
    return counter.get_total_flops() / batch


def _best_flops(device, flops: float, work, max_run_time: float) -> float:
    """`flops` over the seconds of `work()` in its fastest block of calls. Timer warms up
    (thread pool, kernel selection) while it sizes the blocks: single calls of a big product
    on a CPU, tens of calls on a GPU, whose milliseconds would otherwise be timed with a
    synchronisation each. Then at least 4 blocks, more while they spread (interquartile
    range over 10% of the median: load elsewhere) and under `max_run_time` seconds."""
    # imported here, not for every command: it takes 0.1 s, and imports cpp_extension, which
    # logs a warning on a machine with a CUDA toolkit but no GPU
    benchmark = torch_benchmark()

    timer = benchmark.Timer(stmt="work()", globals={"work": work}, timer=clock(device),
                            num_threads=torch.get_num_threads())  # not Timer's default, 1
    return flops / min(timer.adaptive_autorange(max_run_time=max_run_time).times)


def peak_flops(device: torch.device, dtype: torch.dtype, size: int,
               max_run_time: float = 1.0) -> dict:
    """FLOP/s of large dense products in `dtype`, the best block of each: an n x n matmul
    (BLAS), the same product as a 1x1 convolution (oneDNN or cuDNN, which can be the faster
    library: MKL's sgemm on AMD CPUs, for one), and a 3x3 convolution of n/8 channels. The
    fastest is the peak that model FLOP utilisation divides by."""
    make = lambda *shape: torch.randn(*shape, device=device).to(dtype)  # noqa: E731
    a, b = make(size, size), make(size, size)
    found = {"matmul": _best_flops(device, 2 * size**3, lambda: a @ b, max_run_time)}
    last = torch.channels_last
    x, w = make(1, size, size, 1).contiguous(memory_format=last), make(size, size, 1, 1)
    w = w.contiguous(memory_format=last)
    found["matmul_as_1x1_convolution"] = _best_flops(
        device, 2 * size**3, lambda: F.conv2d(x, w), max_run_time)
    channels, batch = size // 8, size // 16
    x = make(batch, channels, 8, 8).contiguous(memory_format=last)
    w = make(channels, channels, 3, 3).contiguous(memory_format=last)
    found["convolution_3x3"] = _best_flops(
        device, 2 * batch * channels**2 * 9 * 64, lambda: F.conv2d(x, w, padding=1), max_run_time)
    return {"flops_per_second": max(found.values()), "probes": found}
