"""Convolution and pooling step by step, on inputs small enough to check by hand.

The slides' worked examples, redone for any input: CS428's 3x3 input and 2x2 kernel giving
0*0 + 1*1 + 3*2 + 4*3 = 19 (002); the 6x6 image and horizontal-edge kernel, and 2x2 max pooling
with stride 2 (001); several input channels summed into each output channel (004); zero,
constant, reflection and replication padding (000); dilated and transposed convolutions (003).

The arithmetic is plain Python on nested lists, never torch's convolution, so each window,
product and sum printed is the one computed; the tests check the results against torch's
conv2d, conv_transpose2d, max_pool2d and avg_pool2d.
"""
from __future__ import annotations

from .arithmetic import axis_formula, make_layer, output_size
from ..errors import UserError
from .inline import Matrix, fmt, grid_text, matrix_text, parse_matrices, shape_text
from .kernels import KERNELS

PADDING_MODES = ("zeros", "constant", "reflect", "replicate", "circular")


# ----------------------------------------------------------------------------- padding

def source_index(i: int, n: int, mode: str) -> int | None:
    """Which input position padded position `i` copies; None for the constant."""
    if 0 <= i < n:
        return i
    if mode in ("zeros", "constant"):
        return None
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "circular":
        return i % n
    return -i if i < 0 else 2 * (n - 1) - i  # reflect: a mirror that does not repeat the edge


def _check_padding_mode(mode: str, pads, hw) -> None:
    if mode not in PADDING_MODES:
        raise UserError(f"unknown padding mode '{mode}'; choose one of: {', '.join(PADDING_MODES)}.")
    for (before, after), n in zip(pads, hw):
        if mode == "reflect" and max(before, after) >= n:
            raise UserError(f"reflect padding {max(before, after)} must be smaller than the input size {n}.")
        if mode == "circular" and max(before, after) > n:
            raise UserError(f"circular padding {max(before, after)} cannot exceed the input size {n}.")


def pad_channel(channel: Matrix, pads, mode: str = "zeros", value=0) -> Matrix:
    """One channel with `pads` ((top, bottom), (left, right)) added in `mode`."""
    (top, bottom), (left, right) = pads
    h, w = len(channel), len(channel[0])

    def at(i, j):
        si, sj = source_index(i, h, mode), source_index(j, w, mode)
        return value if si is None or sj is None else channel[si][sj]
    return [[at(i, j) for j in range(-left, w + right)] for i in range(-top, h + bottom)]


# ----------------------------------------------------------------------------- reference arithmetic

def _sum(matrix: Matrix):
    return sum(sum(row) for row in matrix)


def correlate(channels: list[Matrix], kernels: list[list[Matrix]], bias, layer, mode="zeros", value=0):
    """Cross-correlation as the lectures define it: out[o] = bias[o] + sum over c of the window
    of channel c times kernel[o][c], summed. Returns the output and one step per output value."""
    padded = [pad_channel(c, layer.padding, mode, value) for c in channels]
    out_h, out_w = output_size(layer, (len(channels[0]), len(channels[0][0])))
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    (kh, kw), (top, left) = layer.kernel_size, (layer.padding[0][0], layer.padding[1][0])
    output, steps = [], []
    for o, kernel in enumerate(kernels):
        rows = []
        for i in range(out_h):
            row = []
            for j in range(out_w):
                terms = []
                for c, (plane, weights) in enumerate(zip(padded, kernel)):
                    window = [[plane[i * sh + a * dh][j * sw + b * dw] for b in range(kw)] for a in range(kh)]
                    products = [[x * k for x, k in zip(wr, kr)] for wr, kr in zip(window, weights)]
                    terms.append({"in_channel": c, "window": window, "products": products, "sum": _sum(products)})
                total = sum(t["sum"] for t in terms) + bias[o]
                steps.append({"out_channel": o, "row": i, "col": j,
                              "rows": [i * sh + a * dh - top for a in range(kh)],
                              "cols": [j * sw + b * dw - left for b in range(kw)],
                              "terms": terms, "bias": bias[o], "value": total})
                row.append(total)
            rows.append(row)
        output.append(rows)
    return output, steps


def scatter(channels: list[Matrix], kernels: list[list[Matrix]], bias, layer):
    """Transposed convolution as scattering: every input value stamps value * kernel onto the
    output, s positions apart; padding p then crops p rows/columns from each side and
    output_padding keeps extra ones at the bottom/right."""
    h, w = len(channels[0]), len(channels[0][0])
    out_h, out_w = output_size(layer, (h, w))
    (sh, sw), (dh, dw), (kh, kw) = layer.stride, layer.dilation, layer.kernel_size
    ph, pw = layer.padding[0][0], layer.padding[1][0]
    output = [[[bias[o]] * out_w for _ in range(out_h)] for o in range(len(kernels))]
    steps = []
    for c, plane in enumerate(channels):
        for i in range(h):
            for j in range(w):
                v = plane[i][j]
                rows = [i * sh + a * dh - ph for a in range(kh)]
                cols = [j * sw + b * dw - pw for b in range(kw)]
                stamps = []
                for o, kernel in enumerate(kernels):
                    stamp = [[v * k for k in kr] for kr in kernel[c]]
                    for a, r in enumerate(rows):
                        for b, q in enumerate(cols):
                            if 0 <= r < out_h and 0 <= q < out_w:
                                output[o][r][q] += stamp[a][b]
                    stamps.append(stamp)
                steps.append({"in_channel": c, "row": i, "col": j, "value": v, "rows": rows,
                              "cols": cols, "stamps": stamps})
    return output, steps


def _pool_positions(start: int, k: int, d: int, n: int, pad: int) -> list[int]:
    """A window's positions, cut where PyTorch cuts it: at the end of the right padding."""
    return [start + a * d for a in range(k) if start + a * d < n + pad]


def pool(channels: list[Matrix], layer, mode: str = "max", count_include_pad: bool = True):
    """Max or average pooling with PyTorch's conventions: padding never wins a max, and
    average pooling divides by the window's cells inside input + padding (count_include_pad)."""
    h, w = len(channels[0]), len(channels[0][0])
    out_h, out_w = output_size(layer, (h, w))
    (sh, sw), (dh, dw), (kh, kw) = layer.stride, layer.dilation, layer.kernel_size
    ph, pw = layer.padding[0][0], layer.padding[1][0]
    output, steps = [], []
    for c, plane in enumerate(channels):
        rows_out = []
        for i in range(out_h):
            row = []
            for j in range(out_w):
                rows = _pool_positions(i * sh - ph, kh, dh, h, ph)
                cols = _pool_positions(j * sw - pw, kw, dw, w, pw)
                window = [[plane[r][q] if 0 <= r < h and 0 <= q < w else None for q in cols] for r in rows]
                real = [v for wr in window for v in wr if v is not None]
                divisor = len(rows) * len(cols) if count_include_pad else len(real)
                # a dilated window can fall wholly in the padding; PyTorch's max is then -inf
                value = max(real, default=float("-inf")) if mode == "max" else sum(real) / divisor
                step = {"channel": c, "row": i, "col": j, "rows": rows, "cols": cols, "window": window, "value": value}
                if mode == "avg":
                    step.update(sum=sum(real), divisor=divisor)
                steps.append(step)
                row.append(value)
            rows_out.append(row)
        output.append(rows_out)
    return output, steps


# ----------------------------------------------------------------------------- the commands

def _kernel_channels(spec: str, in_channels: int) -> tuple[str, list[Matrix]]:
    """One output channel's kernel: a catalogue name or inline values, one matrix per input
    channel; a single matrix is used for every input channel, as 004's step 1 describes."""
    text = str(spec).strip()
    if text in KERNELS:
        name, matrices = text, [[list(row) for row in KERNELS[text].values]]
    elif not any(ch.isdigit() for ch in text):
        from ..errors import unknown_name
        raise unknown_name("kernel", text, KERNELS)
    else:
        name, matrices = "given", parse_matrices(text, "the kernel")
    if len(matrices) == 1:
        return name, matrices * in_channels
    if len(matrices) != in_channels:
        raise UserError(f"the kernel has {len(matrices)} channels but the input has {in_channels}; "
                        f"give one matrix per input channel, separated by '|'.")
    return name, matrices


def _numbers(text, count: int, what: str) -> list:
    if text is None:
        return [0] * count
    values = parse_matrices(str(text), what)
    flat = [v for channel in values for row in channel for v in row]
    if len(flat) != count:
        raise UserError(f"{what} needs {count} value(s), one per output channel, got {len(flat)}.")
    return flat


def explain_conv(input: str, kernel, stride="1", padding="0", padding_mode: str = "zeros",
                 pad_value=0, dilation="1", transposed: bool = False, output_padding="0",
                 bias=None) -> dict:
    """`cnnlab explain conv`: every window, its products and their sum, and the output map."""
    channels = parse_matrices(input, "the input")
    specs = [kernel] if isinstance(kernel, str) else list(kernel)
    named = [_kernel_channels(spec, len(channels)) for spec in specs]
    kernels = [k for _, k in named]
    if len({(len(k[0]), len(k[0][0])) for k in kernels}) != 1:
        raise UserError("every kernel must have the same height and width.")
    size = f"{len(kernels[0][0])}x{len(kernels[0][0][0])}"
    layer = make_layer("conv_transpose" if transposed else "conv", size, stride, padding, dilation,
                       1, len(channels), len(kernels), True, output_padding)
    hw = (len(channels[0]), len(channels[0][0]))
    output_size(layer, hw)  # refuses impossible layers with one sentence before any arithmetic
    if transposed and padding_mode != "zeros":
        raise UserError("transposed convolutions pad with zeros only (PyTorch's rule).")
    _check_padding_mode(padding_mode, layer.padding, hw)
    biases = _numbers(bias, len(kernels), "--bias")
    value = parse_matrices(str(pad_value), "--pad-value")[0][0][0] if padding_mode == "constant" else 0
    if transposed:
        output, steps = scatter(channels, kernels, biases, layer)
    else:
        output, steps = correlate(channels, kernels, biases, layer, padding_mode, value)
    return {"operation": "conv_transpose" if transposed else "conv", "input": channels,
            "kernels": kernels, "kernel_names": [n for n, _ in named], "bias": biases,
            "padding_mode": padding_mode, "pad_value": value,
            "padded": [pad_channel(c, layer.padding, padding_mode, value) for c in channels]
            if not transposed and any(any(p) for p in layer.padding) else None,
            "formula": [axis_formula(layer, hw[a], a) for a in (0, 1)],
            "layer": _layer_json(layer), "output": output, "steps": steps}


def explain_pool(input: str, kernel_size="2", stride=None, padding="0", mode: str = "max",
                 dilation="1", ceil_mode: bool = False, count_include_pad: bool = True) -> dict:
    """`cnnlab explain pool`: every window and what max or average makes of it."""
    if mode not in ("max", "avg"):
        raise UserError(f"unknown pooling mode '{mode}'; choose max or avg.")
    channels = parse_matrices(input, "the input")
    layer = make_layer(f"{mode}_pool", kernel_size, stride, padding, dilation, 1, len(channels),
                       len(channels), True, "0", ceil_mode)
    hw = (len(channels[0]), len(channels[0][0]))
    output, steps = pool(channels, layer, mode, count_include_pad)
    return {"operation": f"{mode}_pool", "input": channels, "count_include_pad": count_include_pad,
            "formula": [axis_formula(layer, hw[a], a) for a in (0, 1)],
            "layer": _layer_json(layer), "output": output, "steps": steps}


def _layer_json(layer) -> dict:
    return {"kernel_size": list(layer.kernel_size), "stride": list(layer.stride),
            "padding": [list(p) for p in layer.padding], "dilation": list(layer.dilation),
            "output_padding": list(layer.output_padding), "ceil_mode": layer.ceil_mode}


# ----------------------------------------------------------------------------- text

def _size(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _span(positions: list[int]) -> str:
    """Rows 0-2, or rows 0,2,4 when dilated."""
    steps = {b - a for a, b in zip(positions, positions[1:])}
    if len(positions) > 1 and steps == {1}:
        return f"{positions[0]}..{positions[-1]}"
    return ",".join(map(str, positions))


def _header(result: dict) -> list[str]:
    layer = result["layer"]
    pads = layer["padding"]
    padding = _size([pads[0][0], pads[1][0]]) if all(a == b for a, b in pads) else str(pads)
    lines = []
    if result["operation"].endswith("pool"):
        lines.append(f"{result['operation'].replace('_', ' ')}ing of a {shape_text(result['input'])} input, "
                     f"window {_size(layer['kernel_size'])}, stride {_size(layer['stride'])}, padding {padding}"
                     + (", ceil mode" if layer["ceil_mode"] else ""))
    else:
        kernels = result["kernels"]
        what = "transposed convolution" if result["operation"] == "conv_transpose" else "cross-correlation"
        lines.append(f"{what} of a {shape_text(result['input'])} input with {len(kernels)} kernel(s) of "
                     f"{shape_text(kernels[0])}, stride {_size(layer['stride'])}, padding {padding} "
                     f"({result['padding_mode']}), dilation {_size(layer['dilation'])}")
    same = result["formula"][0] == result["formula"][1]
    lines.append(f"output size, per side: {result['formula'][0]}" if same else
                 f"output height: {result['formula'][0]}\noutput width: {result['formula'][1]}")
    return lines


def _matrices(title: str, matrices, each: str = "channel") -> list[str]:
    """'title, channel 0:' and its grid per channel; one channel needs no number, and one
    matrix used for every channel is printed once."""
    if len(matrices) > 1 and all(m == matrices[0] for m in matrices):
        return [f"{title} (the same for every input {each}):", grid_text(matrices[0])]
    if len(matrices) == 1:
        return [f"{title}:", grid_text(matrices[0])]
    lines = []
    for c, m in enumerate(matrices):
        lines += [f"{title}, {each} {c}:", grid_text(m)]
    return lines


def _conv_step(step: dict, kernels) -> list[str]:
    where = f"out[{step['out_channel']}]({step['row']},{step['col']})"
    span = f"rows {_span(step['rows'])}, cols {_span(step['cols'])}"
    terms = [f"sum({matrix_text(t['window'])} * {matrix_text(kernels[step['out_channel']][t['in_channel']])}) "
             f"= sum({matrix_text(t['products'])}) = {fmt(t['sum'])}" for t in step["terms"]]
    bias = f" + bias {fmt(step['bias'])}" if step["bias"] else ""
    if len(terms) == 1:
        return [f"{where} [{span}] = {terms[0]}{bias}" + (f" = {fmt(step['value'])}" if bias else "")]
    lines = [f"{where} [{span}]:"]
    lines += [f"    channel {t['in_channel']}: {text}" for t, text in zip(step["terms"], terms)]
    sums = " + ".join(fmt(t["sum"]) for t in step["terms"])
    return lines + [f"    = {sums}{bias} = {fmt(step['value'])}"]


def _scatter_step(step: dict) -> list[str]:
    where = f"in[{step['in_channel']}]({step['row']},{step['col']}) = {fmt(step['value'])}"
    stamps = "; ".join(f"out[{o}] += {matrix_text(s)}" for o, s in enumerate(step["stamps"]))
    return [f"{where} -> rows {_span(step['rows'])}, cols {_span(step['cols'])}: {stamps}"]


def _pool_step(step: dict, mode: str) -> list[str]:
    where = f"out[{step['channel']}]({step['row']},{step['col']})"
    window = "[" + "; ".join(" ".join("pad" if v is None else fmt(v) for v in row) for row in step["window"]) + "]"
    if mode == "max":
        return [f"{where} = max{window} = {fmt(step['value'])}"]
    return [f"{where} = sum{window} / {step['divisor']} = {fmt(step['sum'])}/{step['divisor']} = {fmt(step['value'])}"]


def format_explanation(result: dict) -> str:
    """The human text of explain_conv / explain_pool: setup, every step, the output map."""
    lines = _header(result) + [""] + _matrices("input", result["input"])
    operation = result["operation"]
    if not operation.endswith("pool"):
        for o, (name, kernel) in enumerate(zip(result["kernel_names"], result["kernels"])):
            lines += _matrices(f"kernel for output channel {o} ({name})", kernel)
        if result.get("padded"):
            lines += _matrices(f"padded input ({result['padding_mode']})", result["padded"])
    if operation == "conv_transpose":
        lines.append("each input value stamps value * kernel onto the output, a stride apart; padding p "
                     "crops p rows/columns from each side (positions outside the output are dropped)")
    lines.append("")
    for step in result["steps"]:
        if operation == "conv":
            lines += _conv_step(step, result["kernels"])
        elif operation == "conv_transpose":
            lines += _scatter_step(step)
        else:
            lines += _pool_step(step, operation.split("_")[0])
    if operation == "avg_pool" and result["count_include_pad"] and any(
            v is None for s in result["steps"] for row in s["window"] for v in row):
        lines.append("(padding cells count in the divisor: PyTorch's count_include_pad=True)")
    lines.append("")
    return "\n".join(lines + _matrices("output", result["output"]))
