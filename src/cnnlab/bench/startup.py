"""`cnnlab bench --startup`: how long cnnlab takes to answer, from process start (issue 19).

Three commands as a user types them, each in a fresh interpreter: `cnnlab --help`,
`cnnlab conv-shape --input-size 32 --kernel-size 5` (pure arithmetic) and
`cnnlab train --epochs 1` on the built-in digits (a run too short to time layouts). Rounds
take the commands in turn, so a burst of load elsewhere hits all of them; each figure is the
median of the rounds, wall clock and CPU time (user + sys, of the process and its children:
what a loaded machine inflates least), with the load average beside them. Then one
`python -X importtime` of the training command says which heavy modules it loaded and what
each cost (cumulative microseconds as Python counts them). `python -c "import torch"` runs
in the same rounds as the floor that no command using torch can go below.
"""
from __future__ import annotations

import datetime
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> (arguments after `cnnlab`, target median wall seconds on 2 cores)
COMMANDS = {
    "help": (["--help"], 0.5),
    "conv-shape": (["conv-shape", "--input-size", "32", "--kernel-size", "5"], 1.0),
    "train": (["train", "--epochs", "1", "--quiet"], 3.0),
}
FLOOR = [sys.executable, "-c", "import torch"]  # what the training command cannot go below
# The training command again with OpenMP's idle threads sleeping at once instead of spinning:
# on a loaded machine a spinning thread holds a core the thread it waits for needs (a
# LeNet-5 step took 0.5 s with 2 spinning threads and 30 ms with sleeping ones under a load
# average of 12 on 2 cores); whether sleeping costs anything on an idle machine is measured here.
VARIANTS = {"train, OMP_WAIT_POLICY=PASSIVE": ("train", {"OMP_WAIT_POLICY": "PASSIVE"})}
HEAVY = ("torch", "torchvision", "torch._dynamo", "torch.distributed.fsdp", "sklearn",
         "scipy", "matplotlib", "PIL", "numpy", "yaml")
ROUNDS, QUICK_ROUNDS = 5, 1


def _timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, user + sys CPU seconds) of one command run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _argv(name: str, scratch: Path, round_: int, quick: bool, run: str = "run") -> list[str]:
    args = list(COMMANDS[name][0])
    if name == "train":
        args += ["--out", str(scratch / f"{run}-{round_}")]
        if quick:
            args += ["--limit-batches", "1"]
    return [sys.executable, "-m", "cnnlab", *args]


def import_costs(argv: list[str], env: dict) -> dict:
    """{module: cumulative import microseconds} for the HEAVY modules `argv` loaded."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv[1:]], env=env,
                          capture_output=True, text=True, timeout=600)
    costs = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, module = line.split("|")
            if module.strip() in HEAVY and module.strip() not in costs:
                costs[module.strip()] = int(cumulative)
    return costs


def bench_startup(quick: bool = False) -> dict:
    """Median wall and CPU seconds of each command over the rounds, and the training
    command's heavy imports."""
    rounds = QUICK_ROUNDS if quick else ROUNDS
    with tempfile.TemporaryDirectory(prefix="cnnlab-startup-") as scratch:
        scratch = Path(scratch)
        # a first-time user: no remembered layouts, no decoded-data cache
        env = {**os.environ, "XDG_CACHE_HOME": str(scratch / "cache")}
        load_before = os.getloadavg()
        times = {name: [] for name in [*COMMANDS, *VARIANTS, "import torch"]}
        for round_ in range(rounds):
            for name in COMMANDS:
                times[name].append(_timed(_argv(name, scratch, round_, quick), env))
            for name, (command, extra) in VARIANTS.items():
                times[name].append(_timed(_argv(command, scratch, round_, quick, "variant"),
                                          {**env, **extra}))
            times["import torch"].append(_timed(FLOOR, env))
        load_after = os.getloadavg()
        imports = import_costs(_argv("train", scratch, rounds, quick), env)
    rows = {}
    for name, measured in times.items():
        wall = statistics.median(w for w, _ in measured)
        target = COMMANDS[name][1] if name in COMMANDS else None
        command = ("cnnlab " + " ".join(COMMANDS[name][0]) if target
                   else " ".join(f"{k}={v}" for k, v in VARIANTS[name][1].items())
                   + " cnnlab " + " ".join(COMMANDS[VARIANTS[name][0]][0])
                   if name in VARIANTS else 'python -c "import torch"')
        rows[name] = {"command": command,
                      "wall_seconds": round(wall, 3),
                      "cpu_seconds": round(statistics.median(c for _, c in measured), 3),
                      "all_wall_seconds": [round(w, 3) for w, _ in measured],
                      "target_seconds": target,
                      "meets_target": wall < target if target else None}
    return {"created": datetime.datetime.now().isoformat(timespec="seconds"),
            "task": "startup", "rounds": rounds, "cpus": os.cpu_count(),
            "load_average": {"before": [round(x, 2) for x in load_before],
                             "after": [round(x, 2) for x in load_after]},
            "commands": rows, "train_imports_us": imports}


def startup_markdown(result: dict) -> str:
    lines = [f"Start-up, median of {result['rounds']} (load average "
             f"{result['load_average']['before'][0]} before, "
             f"{result['load_average']['after'][0]} after, {result['cpus']} CPUs)", "",
             "| command | wall s | CPU s (user+sys) | target wall s | met |",
             "|---|---|---|---|---|"]
    for row in result["commands"].values():
        target, met = row["target_seconds"], row["meets_target"]
        what = f"< {target:g}" if target else "(floor)" if "import torch" in row["command"] else ""
        lines.append(f"| `{row['command']}` | {row['wall_seconds']:.2f} | "
                     f"{row['cpu_seconds']:.2f} | {what} | "
                     f"{'' if met is None else 'yes' if met else 'no'} |")
    imports = ", ".join(f"{m} {us / 1e6:.2f} s" for m, us in result["train_imports_us"].items())
    lines += ["", f"`cnnlab train` imports (cumulative, -X importtime): {imports}", ""]
    return "\n".join(lines)
