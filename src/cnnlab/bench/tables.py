"""The Markdown side of a benchmark report: training, ratios, inference, targets."""
from __future__ import annotations

TRAINING = (("bare_pytorch", "bare PyTorch step"),
            ("bare_pytorch_fast_path", "bare step, cnnlab's layout and format"),
            ("cnnlab_compute", "cnnlab compute-only"),
            ("cnnlab_end_to_end", "cnnlab end to end"), ("lecture_loop", "lectures' loop"),
            ("lightning_compute", "Lightning compute-only"),
            ("lightning_end_to_end", "Lightning end to end"))
RATIOS = (("end_to_end_vs_lecture_loop", "end to end ÷ lectures' loop"),
          ("end_to_end_vs_compute_only", "end to end ÷ compute-only"),
          ("compute_vs_bare_step", "compute-only ÷ bare step"),
          ("compute_vs_bare_step_fast_path", "compute-only ÷ bare step, same layout and format"),
          ("compute_vs_lightning", "compute-only ÷ Lightning"),
          ("end_to_end_vs_lightning", "end to end ÷ Lightning"))


def _n(value, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(names) -> list[str]:
    return [_row(names), _row(["---"] * len(names))]


def _model(w: dict) -> str:
    return f"{w['name']} ({'x'.join(map(str, w['input_shape']))})"


def _training(workloads) -> list[str]:
    lines = _header(["model (input)", "layout, format", *[n for _, n in TRAINING], "MFU",
                     "memory (MB)"])
    for w in workloads:
        t = w["training"]
        fast = w["fast_path"]
        lines.append(_row([_model(w), f"{fast['memory_format']}, {fast['precision']}",
                           *[_n(t.get(k, {}).get("images_per_second")) for k, _ in TRAINING],
                           f"{w['utilisation']['training_compute']:.1%}",
                           _n(t["cnnlab_compute"]["memory_mb"], 1)]))
    return lines


def _ratios(workloads) -> list[str]:
    lines = _header(["model", *[n for _, n in RATIOS]])
    for w in workloads:
        lines.append(_row([w["name"], *[_n(w["ratios"][k], 2) + "x" if w["ratios"][k] else "–"
                                        for k, _ in RATIOS]]))
    return lines


def _inference(workloads) -> list[str]:
    lines = _header(["model", "batch", "layout, format", "cnnlab", "lectures' loop", "Lightning",
                     "÷ lectures' loop",
                     "÷ Lightning", "memory (MB)"])
    for w in workloads:
        for g in w["inference"]:
            b, r = g["batch_size"], w["ratios"]
            ratio = lambda key: "–" if r.get(key) is None else f"{r[key]:.2f}x"  # noqa: E731
            lines.append(_row([w["name"], str(b), g.get("layout", "–"),
                               _n(g["cnnlab"]["images_per_second"]),
                               _n(g["lecture_loop"]["images_per_second"]),
                               _n(g.get("lightning", {}).get("images_per_second")),
                               ratio(f"inference_{b}_vs_lecture_loop"),
                               ratio(f"inference_{b}_vs_lightning"),
                               _n(g["cnnlab"]["memory_mb"], 1)]))
    return lines


def _targets(rows) -> list[str]:
    lines = _header(["target", "goal", "measured", "met"])
    for t in rows:
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(_row([t["target"], f"≥ {t['goal']:.2f}x", _n(t["measured"], 2) + "x", met]))
    return lines


def markdown(result: dict) -> str:
    m, s, peak = result["machine"], result["settings"], result["peak"]
    intro = [
        f"# cnnlab bench, {result['created'][:16].replace('T', ' ')}", "",
        f"{m['name']} ({m['device']}, {m['cpus']} CPUs, {m['threads']} threads); torch "
        f"{m['torch']}, Lightning {m['lightning'] or 'not installed'}; load average "
        f"{m['load_average'][0]} at the start, {m['load_average_end'][0]} at the end.",
        f"Peak {peak['flops_per_second'] / 1e9:,.0f} GFLOP/s ({peak['dtype']}; the fastest of "
        + ", ".join(f"{k.replace('_', ' ')} {v / 1e9:,.0f}" for k, v in peak["probes"].items())
        + ")" + "".join(f"; {name} {p['flops_per_second'] / 1e9:,.0f} GFLOP/s"
                        for name, p in list(result.get("peaks", {}).items())[1:])
        + f". Training batch {s['batch_size']}; flip + crop "
        f"augmentation on a synthetic uint8 set; images/s are the best of up to {s['rounds']} "
        "interleaved rounds, ratios the median of the ratios within each round; MFU = "
        "achieved FLOP/s ÷ peak; memory = weights, gradients, momentum and saved activations "
        "of a step (inference: weights and the widest layer).",
        *result["notes"]]
    sections = [("Training, images/s", _training), ("Ratios", _ratios),
                ("Inference, images/s", _inference)]
    body = []
    for title, table in sections:
        body += ["", f"## {title}", "", *table(result["workloads"])]
    body += ["", "## Targets", "", *_targets(result["targets"])]
    return "\n".join(intro + body) + "\n"
