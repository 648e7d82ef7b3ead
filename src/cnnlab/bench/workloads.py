"""What the benchmark runs: four lecture models at their natural inputs, and how long for."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Workload:
    model: str
    input_shape: tuple[int, int, int]        # C, H, W
    model_kwargs: dict = field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.model


WORKLOADS = (
    Workload("lecture_cnn", (3, 32, 32)),
    Workload("resnet20", (3, 32, 32)),
    Workload("resnet18", (3, 32, 32), {"stem": "small"}, "resnet18 (small stem)"),
    Workload("lenet5", (1, 28, 28)),
)
CLASSES = 10


@dataclass(frozen=True)
class Settings:
    batch_size: int = 128             # images per training step, the same for every contender
    inference_batches: tuple = (1, 256)
    images: int = 10_000              # size of the synthetic uint8 training set
    # Many short rounds rather than a few long ones: on a shared machine the best round is
    # the one that ran while nothing else did, and more rounds give more chances of one.
    rounds: int = 15                  # interleaved timing rounds; the best counts
    min_rounds: int = 3               # ... and no more once a group has run group_seconds
    group_seconds: float = 240.0
    round_seconds: float = 0.5        # aim for about this long per contender and round
    max_steps: int = 200              # per contender and round
    matmul_size: int | None = None    # side of the peak-FLOP/s matmul (None: 2048 CPU, 8192 GPU)
    warmup: bool = True               # one untimed step per contender before the rounds
    calibrate: bool = True            # time one step first to choose the steps per round
    workers: int | None = None        # DataLoader workers of the lectures' loop (None: CPUs)
    memory_format: str = "auto"       # cnnlab's layout, as `cnnlab train --memory-format`


FULL = Settings()
# Seconds, not minutes, for CI: tiny batches and one round; the numbers mean nothing.
QUICK = Settings(batch_size=2, inference_batches=(1, 2), images=16, rounds=1, min_rounds=1,
                 round_seconds=0.0, max_steps=1, matmul_size=256, warmup=False,
                 calibrate=False, workers=0, memory_format="contiguous")
