"""`cnnlab bench --whole-run`: wall clock from process start to test accuracy printed.

What a user waits for, start-up included: lecture_cnn with flip+crop at batch 64 on a folder
of 32x32 PNGs (the `shapes` set written out as files), for a short and a long run, by
- the lectures' loop as the notes write it, in a script of its own (LECTURE_SCRIPT): torchvision
  ImageFolder + transforms + a DataLoader with 2 workers, SGD, `running_loss += loss.item()`,
  then a test loop under torch.no_grad. Its steps are lectures.LectureLoop's, written out so
  that its process imports torch and torchvision only, as the notes' script does;
- `cnnlab train --dataset folder:PATH` with its defaults, twice: cold (an empty cache folder:
  every image decoded, the layout timed) and warm (the second run on the same folder).
Each is a fresh process timed from outside (subprocess), the three back to back in a round,
three rounds (machines here are shared: one round can take twice another); a ratio is cnnlab's
seconds over the lectures' in the same round, the median over rounds reported, beside each
contender's median round. cnnlab's stderr lines are stamped as
they arrive, which splits its wall clock into phases: imports, listing and decoding, setting up
(statistics, model, layout timing, run folder), training, the final evaluation and writing.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.shapes import CLASSES, generate_shapes


@dataclass(frozen=True)
class WholeRun:
    images: int = 6000
    size: int = 32
    epochs: tuple = (1, 4)
    batch_size: int = 64
    model: str = "lecture_cnn"
    augment: str = "flip-crop"
    workers: int = 2          # the lectures' DataLoader workers
    rounds: int = 3           # each contender this many times; medians reported
    timeout: int = 1800       # seconds one process may take before the bench gives up


FULL = WholeRun()
QUICK = WholeRun(images=60, epochs=(1,), rounds=1)

# The lectures' script (001 'Training', 003 'custom Dataset'), as a student would run it. Its
# split has cnnlab's sizes (70% train, 20% test; the 10% cnnlab validates on is unused).
LECTURE_SCRIPT = r'''
import sys, time
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms
print("@imported", flush=True, file=sys.stderr)
root, epochs, batch_size, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(6 * 8 * 8, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, NUM_CLASSES)
    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))

normalize = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
train_transform = transforms.Compose([transforms.RandomCrop(32, padding=4),
    transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalize])
test_transform = transforms.Compose([transforms.ToTensor(), normalize])
train_data = datasets.ImageFolder(root, transform=train_transform)
test_data = datasets.ImageFolder(root, transform=test_transform)
NUM_CLASSES = len(train_data.classes)
order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(0)).tolist()
n_train, n_test = int(0.7 * len(order)), int(0.2 * len(order))
train_loader = DataLoader(Subset(train_data, order[:n_train]), batch_size=batch_size,
                          shuffle=True, num_workers=workers)
test_loader = DataLoader(Subset(test_data, order[-n_test:]), batch_size=batch_size,
                         num_workers=workers)
torch.manual_seed(0)
model = Net()
loss_func = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
print("@ready", flush=True, file=sys.stderr)
for epoch in range(epochs):
    model.train()
    running_loss = 0.0
    for inputs, labels in train_loader:
        y_pred = model(inputs)                 # 1) feed forward
        loss = loss_func(y_pred, labels)       # 2) compute the loss
        optimizer.zero_grad()                  # 3) backpropagation of errors
        loss.backward()
        optimizer.step()                       # 4) update parameters
        running_loss += loss.item()
    print(f"epoch {epoch + 1} loss {running_loss / len(train_loader):.4f}", flush=True,
          file=sys.stderr)
model.eval()
correct = total = 0
with torch.no_grad():
    for inputs, labels in test_loader:
        correct += (model(inputs).argmax(1) == labels).sum().item()
        total += len(labels)
print(f"test accuracy {correct / total:.4f}", flush=True)
print("@tested", flush=True, file=sys.stderr)
'''

# cnnlab's own command, preceded by the import of its training stack, so the moment the imports
# end is known; the command then imports nothing of that again.
CNNLAB_SCRIPT = ("import sys; import cnnlab.training.run; "
                 "print('@imported', file=sys.stderr, flush=True); "
                 "from cnnlab.cli.main import main; main()")  # as `cnnlab` runs, exit included


def write_folder(root: Path, settings: WholeRun) -> Path:
    """`settings.images` PNGs of the shapes set in ROOT/<class>/ (not timed)."""
    from PIL import Image
    data = generate_shapes(settings.images, settings.size, seed=0)
    pixels = data.images.permute(0, 2, 3, 1).numpy()
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(pixels, data.labels.tolist())):
        Image.fromarray(image).save(root / CLASSES[label] / f"{index:05d}.png")
    return root


def timed_process(command: list[str], env: dict, timeout: int) -> dict:
    """Run `command`; its wall seconds, stdout, and each stderr line with the second it came."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    lines: list[tuple[float, str]] = []

    def read_stderr():
        for line in process.stderr:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    killer = threading.Timer(timeout, process.kill)  # a run that hangs ends the bench
    killer.start()
    try:
        stdout = process.stdout.read()
        process.wait()
    finally:
        killer.cancel()
    seconds = time.perf_counter() - started
    reader.join()
    if process.returncode != 0:
        tail = "\n".join(line for _, line in lines[-15:])
        raise RuntimeError(f"{command[:4]} failed ({process.returncode}):\n{tail}")
    return {"seconds": seconds, "stdout": stdout, "stderr": lines}


def _when(lines, pattern: str, last: bool = False) -> float | None:
    found = [t for t, line in lines if re.match(pattern, line)]
    return (found[-1] if last else found[0]) if found else None


def lecture_run(folder: Path, epochs: int, settings: WholeRun) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(LECTURE_SCRIPT)
    try:
        done = timed_process([sys.executable, script.name, str(folder), str(epochs),
                              str(settings.batch_size), str(settings.workers)],
                             dict(os.environ), settings.timeout)
    finally:
        os.unlink(script.name)
    lines, total = done["stderr"], done["seconds"]
    marks = [_when(lines, "@imported"), _when(lines, "@ready"), _when(lines, "epoch", last=True),
             _when(lines, "@tested")]
    accuracy = float(re.search(r"test accuracy ([\d.]+)", done["stdout"]).group(1))
    return {"seconds": round(total, 2), "seconds_to_accuracy": round(marks[-1], 2),
            "test_accuracy": round(accuracy, 4),
            "phases": _phases(marks, total, ("imports", "listing the folder", "training",
                                             "test evaluation", "exit"))}


def cnnlab_run(folder: Path, epochs: int, settings: WholeRun, cache: Path, out: Path) -> dict:
    command = [sys.executable, "-c", CNNLAB_SCRIPT, "train", "--dataset", f"folder:{folder}",
               "--model", settings.model, "--augment", settings.augment, "--batch-size",
               str(settings.batch_size), "--epochs", str(epochs), "--out", str(out), "--json"]
    done = timed_process(command, {**os.environ, "XDG_CACHE_HOME": str(cache)}, settings.timeout)
    lines, total = done["stderr"], done["seconds"]
    decoded = next(line for _, line in lines if line.startswith("decoded images"))
    decode_seconds = float(re.search(r"in ([\d.]+) s$", decoded).group(1))
    at_decoded = _when(lines, "decoded images")
    marks = [_when(lines, "@imported"), at_decoded - decode_seconds, at_decoded,
             _when(lines, "training "), _when(lines, r"epoch\s+\d+/", last=True),
             _when(lines, "test accuracy")]
    result = json.loads(done["stdout"])
    return {"seconds": round(total, 2), "seconds_to_accuracy": round(marks[-1], 2),
            "test_accuracy": round(result["test_accuracy"], 4),
            "decoded": decoded.split(": ", 1)[1],
            "phases": _phases(marks, total, (
                "imports", "listing and splitting the folder", "decoding",
                "setting up (statistics, model, layout timing, run folder)", "training",
                "final evaluation and writing the run", "after the test line (JSON, exit)"))}


def _phases(marks: list, total: float, names: tuple) -> dict:
    """Seconds between consecutive marks (process start, each mark, process end)."""
    edges = [0.0, *marks, total]
    return {name: (round(b - a, 2) if a is not None and b is not None else None)
            for name, a, b in zip(names, edges, edges[1:])}


def bench_whole_run(settings: WholeRun = FULL, log=lambda message: None) -> dict:
    """Every run of `settings`, in one JSON-ready dict with the ratios and the target."""
    started_load = [round(x, 2) for x in os.getloadavg()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-whole-run-") as temp:
        temp = Path(temp)
        log(f"writing {settings.images:,} PNGs of {settings.size}x{settings.size}")
        folder = write_folder(temp / "images", settings)
        for epochs in settings.epochs:
            rounds = [_round(folder, epochs, settings, temp / f"{epochs}-{k}", log)
                      for k in range(settings.rounds)]
            rows.append(_summary(epochs, rounds))
    return {"cnnlab_bench_whole_run": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "settings": asdict(settings), "machine": _machine(started_load), "runs": rows,
            "target": _target(rows)}


def _round(folder: Path, epochs: int, settings: WholeRun, temp: Path, log) -> dict:
    """The three back to back: a burst of load elsewhere then slows a pair together."""
    log(f"{epochs} epoch(s): the lectures' loop")
    runs = {"lectures": lecture_run(folder, epochs, settings)}
    cache = temp / "cache"  # empty: the cold run finds nothing remembered, the warm one all
    for name in ("cnnlab_cold", "cnnlab_warm"):
        log(f"{epochs} epoch(s): cnnlab, {name.split('_')[1]} cache")
        runs[name] = cnnlab_run(folder, epochs, settings, cache, temp / name)
    return runs


def _summary(epochs: int, rounds: list[dict]) -> dict:
    """Each contender's median round, and the median over rounds of each round's ratios
    (the pair measured together, as report.paired_ratio does)."""
    row = {"epochs": epochs, "rounds": len(rounds)}
    for name in ("lectures", "cnnlab_cold", "cnnlab_warm"):
        ordered = sorted(rounds, key=lambda r: r[name]["seconds"])
        row[name] = ordered[(len(ordered) - 1) // 2][name]
    for name in ("cold", "warm"):  # to the prompt back, and to the accuracy printed
        for suffix, key in (("", "seconds"), ("_to_accuracy", "seconds_to_accuracy")):
            row[f"ratio_{name}{suffix}"] = round(statistics.median(
                r[f"cnnlab_{name}"][key] / r["lectures"][key] for r in rounds), 3)
    return row


def _machine(load_at_start: list) -> dict:
    import platform
    import torch
    return {"cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(), "torch": torch.__version__,
            "load_average": load_at_start,
            "load_average_end": [round(x, 2) for x in os.getloadavg()]}


def _target(rows: list) -> dict:
    """The issue's goal: the longest run at most half the lectures' wall clock."""
    longest = max(rows, key=lambda row: row["epochs"])
    return {"target": f"{longest['epochs']}-epoch run at most 0.5x the lectures' loop's "
                      "wall clock, start-up included",
            "cold": longest["ratio_cold"], "warm": longest["ratio_warm"],
            "met": longest["ratio_warm"] <= 0.5, "met_cold": longest["ratio_cold"] <= 0.5}


def whole_run_markdown(result: dict) -> str:
    s, m = result["settings"], result["machine"]
    lines = [f"# Whole run: process start to test accuracy printed ({result['created'][:10]})", "",
             f"{s['model']}, {s['augment']}, batch {s['batch_size']}, a folder of "
             f"{s['images']:,} PNGs of {s['size']}x{s['size']}; {m['cpus']} CPUs "
             f"({m['processor']}), load average {m['load_average'][0]} at the start and "
             f"{m['load_average_end'][0]} at the end; medians of {s['rounds']} round(s).", "",
             "Seconds from process start to the prompt back (in brackets: to the test "
             "accuracy printed).", "",
             "| epochs | lectures' loop, s | cnnlab cold, s | cnnlab warm, s | ratio cold "
             "| ratio warm | test accuracy (lectures / cnnlab warm) |", "|" + "---|" * 7]
    for r in result["runs"]:
        lec, cold, warm = r["lectures"], r["cnnlab_cold"], r["cnnlab_warm"]
        lines.append(f"| {r['epochs']} | {lec['seconds']} ({lec['seconds_to_accuracy']}) "
                     f"| {cold['seconds']} ({cold['seconds_to_accuracy']}) "
                     f"| {warm['seconds']} ({warm['seconds_to_accuracy']}) "
                     f"| {r['ratio_cold']} ({r['ratio_cold_to_accuracy']}) "
                     f"| {r['ratio_warm']} ({r['ratio_warm_to_accuracy']}) "
                     f"| {lec['test_accuracy']:.3f} / {warm['test_accuracy']:.3f} |")
    lines += ["", "## Where the seconds go", "", "| run | " + " | ".join(
        result["runs"][0]["cnnlab_cold"]["phases"]) + " |", "|---|" + "---|" * len(
        result["runs"][0]["cnnlab_cold"]["phases"])]
    for r in result["runs"]:
        for name in ("cnnlab_cold", "cnnlab_warm"):
            phases = r[name]["phases"]
            lines.append(f"| {r['epochs']} epoch(s), {name.replace('_', ' ')} | "
                         + " | ".join("" if v is None else f"{v}" for v in phases.values()) + " |")
    lines += ["", "The lectures' loop: " + "; ".join(
        f"{r['epochs']} epoch(s): " + ", ".join(f"{k} {v}" for k, v in r["lectures"]["phases"].items())
        for r in result["runs"]), "",
        f"Target: {result['target']['target']}: warm {result['target']['warm']}, cold "
        f"{result['target']['cold']} ({'met' if result['target']['met'] else 'not met'}).", ""]
    return "\n".join(lines)
