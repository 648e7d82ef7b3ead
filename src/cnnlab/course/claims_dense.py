"""Why convolution beats one weight per pixel (002 'Too many parameters! ... What happens if the
object in the image shifts a little?'; 004 'Linear regression on images', 'Contradictions').

The registry's dense baselines (models/dense.py: `linear`, `mlp`) and a small CNN with global
pooling (claims_fit.small_cnn) are trained on the same digits, each placed on a black canvas
and jittered a little, then tested with every digit centred and moved further than training
ever moved it. The dense models learned weights tied to pixel positions, so their accuracy
falls as the digit moves; the CNN applies the same kernels everywhere and pools over where,
so it keeps most of its accuracy. Beside it: the parameter counts, and 002's 200x200x3 ->
1000 dense layer counted against a convolution's.
"""
from __future__ import annotations

from ..errors import UserError
from .arithmetic import whole
from .claims_data import placed_digits, room
from .claims_fit import accuracy, fit, parameter_count, parse_epochs_scale, small_cnn

# per model: epochs and Adam's learning rate that train it on ~1,350 digits in seconds
TRAINING = {"linear": (15, 1e-2), "mlp": (15, 1e-2), "cnn": (8, 5e-3)}


def _models(canvas: int) -> dict:
    from ..models.dense import DenseNet
    return {"linear": DenseNet(10, 1, (canvas, canvas)),
            "mlp": DenseNet(10, 1, (canvas, canvas), hidden=(256,)),
            "cnn": small_cnn(canvas=canvas)}


def lecture_counts() -> dict:
    """002's first layer: 200x200x3 pixels, each wired to 1000 units, against a layer of
    1000 3x3 kernels over the same image (the same number of outputs per position)."""
    dense = 200 * 200 * 3 * 1000
    conv = 1000 * (3 * 3 * 3 + 1)
    return {"dense_weights": dense, "dense_params": dense + 1000, "conv_3x3_params": conv,
            "ratio": (dense + 1000) / conv}


def explain_dense(canvas="24", train_shift="2", test_shift="6", epochs_scale="1", seed="0",
                  out=None) -> dict:
    """`cnnlab explain dense`: parameters and accuracy, centred and moved, per model."""
    side, jitter, moved = whole(canvas, "canvas"), whole(train_shift, "train shift"), whole(test_shift, "test shift")
    scale, seed = parse_epochs_scale(epochs_scale), whole(seed, "seed")
    if side % 4 or side < 12:
        raise UserError("the canvas side must be a multiple of 4 from 12 (the CNN halves it twice).")
    if not 0 <= jitter <= room(side) or not 0 <= moved <= room(side):
        raise UserError(f"on a {side}-pixel canvas a digit can move at most {room(side)} pixels "
                        f"from the centre; give shifts from 0 to {room(side)}.")
    data = placed_digits(side, seed)
    train = data.jittered(data.train, jitter, seed + 1)
    distances = list(range(data.room + 1))
    tests = {k: data.shifted(data.test, k, seed + 2) for k in distances}
    rows = {}
    for name, model in _models(side).items():
        epochs, lr = TRAINING[name]
        losses = fit(model, train, data.train_labels, max(1, round(epochs * scale)), lr, seed=seed)
        curve = [accuracy(model, tests[k], data.test_labels) for k in distances]
        rows[name] = {"params": parameter_count(model), "final_train_loss": losses[-1],
                      "train_accuracy": accuracy(model, train, data.train_labels),
                      "centred_accuracy": curve[0], "shifted_accuracy": curve[moved],
                      "drop": curve[0] - curve[moved], "accuracy_by_shift": curve}
    result = {"canvas": side, "train_shift": jitter, "test_shift": moved, "shifts": distances,
              "train_images": len(train), "test_images": len(data.test), "models": rows,
              "lecture": lecture_counts(), "out": None}
    if out:
        result["out"] = _picture(result, out)
    return result


def _picture(result: dict, path: str) -> str:
    from matplotlib.figure import Figure

    from ..figures import checked_format, save_figure
    checked_format(path)
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    for name, row in result["models"].items():
        ax.plot(result["shifts"], row["accuracy_by_shift"], marker="o",
                label=f"{name} ({row['params']:,} parameters)")
    ax.axvline(result["train_shift"], color="grey", linestyle=":", label="largest shift in training")
    ax.set_xlabel("pixels the test digit is moved from the centre")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"digits on a {result['canvas']}x{result['canvas']} canvas: one weight per pixel "
                 "vs convolution", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return str(path)


def format_dense(result: dict) -> str:
    side, moved = result["canvas"], result["test_shift"]
    lines = [f"{result['train_images']:,} digits on a {side}x{side} canvas, moved up to "
             f"{result['train_shift']} pixels in training; {result['test_images']} test digits "
             f"centred, then moved {moved} pixels:",
             f"  {'model':<7} {'parameters':>10}  {'train':>6}  {'centred':>7}  {'moved':>6}  change"]
    for name, row in result["models"].items():
        lines.append(f"  {name:<7} {row['params']:>10,}  {row['train_accuracy']:>6.1%}  "
                     f"{row['centred_accuracy']:>7.1%}  {row['shifted_accuracy']:>6.1%}  "
                     f"{-row['drop']:+.1%}")
    lines.append("  accuracy by pixels moved (" + ", ".join(map(str, result["shifts"])) + "):")
    lines += [f"    {name:<7} " + " ".join(f"{a:.2f}" for a in row["accuracy_by_shift"])
              for name, row in result["models"].items()]
    lecture = result["lecture"]
    lines.append(f"002's first layer on 200x200x3 into 1000 units: 200*200*3*1000 = "
                 f"{lecture['dense_weights']:,} weights ({lecture['dense_params']:,} with biases); "
                 f"1000 3x3 kernels over the same image: 1000*(3*3*3 + 1) = "
                 f"{lecture['conv_3x3_params']:,}, {lecture['ratio']:,.0f} times fewer")
    lines.append("training used cross-entropy on the logits (001's 'cross-validation loss' means "
                 "this cross-entropy loss)")
    if result["out"]:
        lines.append(f"saved {result['out']}")
    return "\n".join(lines)
