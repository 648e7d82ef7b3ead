"""`cnnlab bench`: how fast cnnlab trains and predicts, beside the loops people would otherwise use.

For each workload (a model, its input and a batch size) one run measures, on the same model,
data and batch size: a bare PyTorch step, cnnlab compute-only and end to end, the lectures'
plain loop (per-image transforms in a DataLoader), PyTorch Lightning's Trainer (when
installed), inference at batch 1 and a large batch, step memory, and model FLOP utilisation
against a large matmul timed in the same run. Machines are shared and noisy, so every
figure is the best of several interleaved rounds, and the claims are ratios within one run.

    suite.py      the rounds: who runs when, best-of timing
    workloads.py  the models, inputs, batch sizes; full and --quick settings
    data.py       the CIFAR-shaped uint8 set and the batches each contender sees
    ours.py       cnnlab's engine and fast path
    lectures.py   the bare PyTorch step and the lectures' loop
    rival.py      PyTorch Lightning's Trainer
    measure.py    clocks, memory, FLOPs and the matmul peak
    report.py     the machine, ratios and targets; the JSON file
    tables.py     the Markdown tables

`cnnlab bench --task segment|detect` times a task's training beside torchvision's
reference scripts instead (task_speed.py; segmentation.py, detection.py; task_suite.py).
"""
from .report import write_results
from .suite import run_bench
from .tables import markdown

__all__ = ["run_bench", "markdown", "write_results"]
