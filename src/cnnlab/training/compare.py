"""`cnnlab transfer-compare`: feature extraction, fine-tuning and training from scratch side by
side, with the same architecture, input, data, epochs and optimiser (lectures 001 and 003: is
re-using a pretrained network worth it, and how much of it should train?). --head-layers
gives all three the same several-layer head.

Writes OUT/features, OUT/finetune and OUT/scratch (ordinary run folders) and the table as
OUT/compare.md and OUT/compare.json.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from ..atomic import atomic_write_text
from ..config.train_config import TrainConfig
from ..errors import UserError
from ..config.train_config import TRANSFER_MODES

TABLE = "compare"


def _row(mode: str, result) -> dict:
    # Seconds per epoch include validation: the cost a user waits for, the same for all modes.
    return {"mode": mode, "test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
            "trainable_parameters": result.parameters["trainable_parameters"],
            "frozen_parameters": result.parameters["frozen_parameters"],
            "seconds_per_epoch": result.seconds / len(result.history),
            "run_dir": str(result.run_dir)}


def transfer_compare(config: TrainConfig, quiet: bool = False) -> dict:
    """Train config.pretrained three ways for config.epochs each; the table as a dict."""
    from .run import train
    if config.pretrained is None:
        raise UserError("transfer-compare needs --pretrained MODEL, e.g. --pretrained "
                        "efficientnet_lite0.")
    out = Path(config.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-compare-"
                              f"{config.pretrained}-{config.dataset}")
    if (out / f"{TABLE}.json").exists():
        raise UserError(f"{out} already holds a comparison; choose another --out or remove it.")
    rows = []
    for mode in TRANSFER_MODES:
        # --unfreeze-after belongs to feature extraction; the others train everything anyway.
        unfreeze = config.unfreeze_after if mode == "features" else 0
        run = dataclasses.replace(config, transfer=mode, unfreeze_after=unfreeze,
                                  out=str(out / mode))
        rows.append(_row(mode, train(run, quiet=quiet)))
    table = {"pretrained": config.pretrained, "dataset": config.dataset,
             "epochs": config.epochs, "seed": config.seed, "head_layers": config.head_layers,
             "rows": rows,
             "markdown": str(out / f"{TABLE}.md")}
    atomic_write_text(out / f"{TABLE}.json", json.dumps(table, indent=2) + "\n")
    atomic_write_text(out / f"{TABLE}.md", format_table(table) + "\n")
    return table


def format_table(table: dict) -> str:
    layers = table.get("head_layers", 1)  # a table written before --head-layers: 1
    head = f", a new head of {layers} layers" if layers > 1 else ""
    lines = [f"{table['pretrained']} on {table['dataset']}, {table['epochs']} epochs each "
             f"(seed {table['seed']}{head})", "",
             "| mode | test accuracy | trainable parameters | frozen parameters | s / epoch |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['mode']} | {r['test_accuracy']:.2%} | {r['trainable_parameters']:,} | "
              f"{r['frozen_parameters']:,} | {r['seconds_per_epoch']:.2f} |" for r in table["rows"]]
    return "\n".join(lines)
