"""`cnnlab models`: the registry as a table (name, family, parameters, input size, task,
paper)."""
from __future__ import annotations

from .registry import list_models, model_info, parameter_count


def describe(name: str) -> dict:
    """One model's record, JSON-ready. Parameters are for its default configuration and classes."""
    info = model_info(name)
    return {"name": name, "family": info.family, "parameters": parameter_count(name),
            "num_classes": info.num_classes, "input_size": list(info.input_size),
            "small_input_size": list(info.small_input_size) if info.small_input_size else None,
            "mean": list(info.mean), "std": list(info.std), "options": list(info.options),
            "torchvision_weights": info.torchvision is not None, "task": info.task,
            "paper": info.paper}


def describe_models() -> dict:
    return {"models": [describe(name) for name in list_models()]}


def format_models(table: dict) -> str:
    size = lambda s: "x".join(map(str, s)) if s else "-"  # noqa: E731
    rows = [("name", "family", "parameters", "input", "small input", "task", "paper")]
    rows += [(m["name"], m["family"], f"{m['parameters']:,}", size(m["input_size"]),
              size(m["small_input_size"]), m["task"], m["paper"]) for m in table["models"]]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join([cell.ljust(w) if i != 2 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))] + [row[6]])
             for row in rows]
    return "\n".join(lines)
