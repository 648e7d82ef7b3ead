"""The lectures' loss, computed the ways they write it (000 'loss with logits', 001, 003).

Cross-entropy is the log-softmax of the logits followed by the negative log-likelihood of the
true class: computed both ways on random logits, the two agree to float rounding. For two
classes one logit is enough: BCEWithLogitsLoss on z is the cross-entropy of the two logits
(0, z), since softmax((0, z)) = (1 - sigmoid(z), sigmoid(z)); checked the same way, then both
heads are trained side by side on two digits that look alike (3 and 8) from the same start.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError
from .arithmetic import whole
from .claims_data import placed_digits
from .claims_fit import accuracy, fit, predict, small_cnn

PAIR = (3, 8)  # the two digits the binary classifiers tell apart
CANVAS = 12    # 8x8 digits centred on 12x12: small_cnn halves the side twice


def explain_loss(classes="10", seed="0", epochs="6") -> dict:
    """`cnnlab explain loss`: the identities on random logits, then the two binary heads."""
    count, seed, epochs = whole(classes, "classes"), whole(seed, "seed"), whole(epochs, "epochs")
    if count < 2 or epochs < 1:
        raise UserError("give at least 2 classes and at least 1 epoch.")
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(256, count, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, count, (256,), generator=gen)
    by_parts = F.nll_loss(F.log_softmax(logits, dim=1), labels)
    z = logits[:, 0]
    binary = (labels % 2).double()
    by_hand = -(binary * F.logsigmoid(z) + (1 - binary) * F.logsigmoid(-z)).mean()
    pair_logits = torch.stack([torch.zeros_like(z), z], dim=1)
    return {"cross_entropy": F.cross_entropy(logits, labels).item(),
            "log_softmax_then_nll": by_parts.item(),
            "cross_entropy_difference": abs(F.cross_entropy(logits, labels) - by_parts).item(),
            "bce_with_logits": F.binary_cross_entropy_with_logits(z, binary).item(),
            "bce_by_hand": by_hand.item(),
            "cross_entropy_of_0_and_z": F.cross_entropy(pair_logits, binary.long()).item(),
            "binary_difference": abs(F.binary_cross_entropy_with_logits(z, binary)
                                     - F.cross_entropy(pair_logits, binary.long())).item(),
            "trained": _two_heads(seed, epochs)}


def _two_heads(seed: int, epochs: int) -> dict:
    """The same small CNN with two logits (cross-entropy) and with one (BCEWithLogitsLoss)."""
    data = placed_digits(CANVAS, seed)
    (train_images, train), (test_images, test) = (
        _pair(data, digits, labels) for digits, labels in
        ((data.train, data.train_labels), (data.test, data.test_labels)))
    rows = {}
    for name, outputs, objective in (
            ("two_logits_cross_entropy", 2, F.cross_entropy),
            ("one_logit_bce_with_logits", 1,
             lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y.float()))):
        torch.manual_seed(seed)
        model = small_cnn(outputs, canvas=CANVAS)
        losses = fit(model, train_images, train, epochs, 3e-3, seed=seed, objective=objective)
        rows[name] = {"outputs": outputs, "final_train_loss": losses[-1],
                      "test_accuracy": accuracy(model, test_images, test),
                      "predictions": predict(model, test_images)}
    agree = (rows["two_logits_cross_entropy"].pop("predictions")
             == rows["one_logit_bce_with_logits"].pop("predictions")).double().mean().item()
    return {"digits": list(PAIR), "train_images": len(train), "test_images": len(test),
            "epochs": epochs, "models": rows, "same_answer": agree}


def _pair(data, digits: torch.Tensor, labels: torch.Tensor):
    """The two digits of PAIR, centred, labelled 0 and 1."""
    keep = (labels == PAIR[0]) | (labels == PAIR[1])
    centred = data.place(digits[keep], torch.zeros(int(keep.sum()), 2, dtype=torch.long))
    return centred, (labels[keep] == PAIR[1]).long()


def format_loss(result: dict) -> str:
    trained = result["trained"]
    lines = ["cross-entropy = log-softmax, then the negative log-likelihood of the true class:",
             f"  {result['cross_entropy']:.12f} = {result['log_softmax_then_nll']:.12f} "
             f"(difference {result['cross_entropy_difference']:.1e})",
             "two classes, one logit z: BCEWithLogitsLoss(z) = cross-entropy of the logits (0, z):",
             f"  {result['bce_with_logits']:.12f} = {result['cross_entropy_of_0_and_z']:.12f} "
             f"(difference {result['binary_difference']:.1e}; by hand "
             f"{result['bce_by_hand']:.12f})",
             f"trained on digits {trained['digits'][0]} vs {trained['digits'][1]} "
             f"({trained['train_images']} training, {trained['test_images']} test images, "
             f"{trained['epochs']} epochs):"]
    lines += [f"  {name.replace('_', ' ')}: {row['outputs']} output(s), test accuracy "
              f"{row['test_accuracy']:.2%}" for name, row in trained["models"].items()]
    lines.append(f"  the two give the same answer on {trained['same_answer']:.1%} of test images")
    return "\n".join(lines)
