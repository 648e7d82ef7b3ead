"""`cnnlab bench --task NAME`: which task benchmark runs, and where its results go."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

from .task_speed import FULL, QUICK, task_markdown

BENCHES = {"segment": "segmentation:bench_segmentation", "detect": "detection:bench_detection"}


def run_task_bench(task: str, quick: bool = False) -> dict:
    module, function = BENCHES[task].split(":")
    bench = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    return bench(QUICK if quick else FULL[task])


def write_task_results(result: dict, out_dir: str | Path, quick: bool = False,
                       name: str | None = None, markdown=task_markdown):
    """OUT/<date>-<name>[-quick].{json,md}: the result and its `markdown` table (the name is
    the task's unless given: `serve` for serve_load's)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{result['created'][:10]}-{name or result['task']}{'-quick' if quick else ''}"
    paths = out / f"{stem}.json", out / f"{stem}.md"
    paths[0].write_text(json.dumps(result, indent=2) + "\n")
    paths[1].write_text(markdown(result))
    return paths
