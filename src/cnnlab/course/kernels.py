"""Classic image kernels, applied to real photographs, and whether they are separable.

The lectures show what one convolution can do before any learning: blur, sharpen and detect
edges (CS428 lecture 4, 002), the Laplacian as 'the parameters of a local linear regression'
(004), and Sobel's x and y filters as the example of a separable convolution (003): a kernel
k = k1 k2 of rank one can be applied as two 1-D passes, k_h + k_w multiply-adds per pixel
instead of k_h * k_w, with the same result.

Kernels are cross-correlation kernels, as in PyTorch: sobel-x is positive where brightness
rises to the right, sobel-y where it rises downwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .arithmetic import same_padding
from ..errors import UserError, unknown_name
from .inline import parse_matrices


@dataclass(frozen=True)
class Kernel:
    name: str
    values: tuple
    about: str

    def array(self) -> np.ndarray:
        return np.array(self.values, dtype=np.float64)


def _k(name: str, rows: str, about: str, scale: int = 1) -> Kernel:
    values = tuple(tuple(v if scale == 1 else v / scale for v in row)
                   for row in parse_matrices(rows, f"kernel {name}")[0])
    return Kernel(name, values, about)


_CATALOGUE = [
    _k("identity", "0 0 0; 0 1 0; 0 0 0", "leaves the image unchanged"),
    _k("box-blur", "1 1 1; 1 1 1; 1 1 1", "the mean of each 3x3 neighbourhood", 9),
    _k("gaussian-blur", "1 2 1; 2 4 2; 1 2 1", "a 3x3 binomial approximation of a Gaussian", 16),
    _k("gaussian-blur-5", "1 4 6 4 1; 4 16 24 16 4; 6 24 36 24 6; 4 16 24 16 4; 1 4 6 4 1",
       "a 5x5 binomial Gaussian, [1 4 6 4 1] times itself", 256),
    _k("blur-cs428", "0 1 0; 1 4 1; 0 1 0",
       "CS428 (002) 'blur an image'; its weights sum to 8, so it also brightens eightfold"),
    _k("sharpen", "0 -1 0; -1 5 -1; 0 -1 0", "the image plus its negated Laplacian"),
    _k("sharpen-cs428", "0 -1 0; -1 8 -1; 0 -1 0",
       "CS428 (002) 'sharpen an image'; its weights sum to 4, so it also brightens fourfold"),
    _k("edge-cs428", "0 -1 0; -1 4 -1; 0 -1 0", "CS428 (002) 'detect edges': the negated 4-neighbour Laplacian"),
    _k("laplacian", "0 1 0; 1 -4 1; 0 1 0", "4-neighbour Laplacian: second derivative, zero on flat areas"),
    _k("laplacian-8", "-1 -1 -1; -1 8 -1; -1 -1 -1",
       "the local-linear-regression lecture's (004) edge kernel: the negated 8-neighbour Laplacian"),
    _k("sobel-x", "-1 0 1; -2 0 2; -1 0 1", "Sobel's x filter (003): vertical edges, [1 2 1] smoothing times [-1 0 1]"),
    _k("sobel-y", "-1 -2 -1; 0 0 0; 1 2 1",
       "Sobel's y filter as lecture 001 applies it (horizontal edges); 003 prints it negated"),
    _k("sobel-cs428", "1 0 -1; 2 0 -2; 1 0 -1", "CS428 (002) 'Sobel filter': sobel-x negated"),
    _k("prewitt-x", "-1 0 1; -1 0 1; -1 0 1", "Prewitt's x filter: like Sobel without the centre weighting"),
    _k("prewitt-y", "-1 -1 -1; 0 0 0; 1 1 1", "Prewitt's y filter"),
    _k("emboss", "-2 -1 0; -1 1 1; 0 1 2", "relief lit from the bottom right"),
]
KERNELS = {k.name: k for k in _CATALOGUE}


def get_kernel(spec: str) -> tuple[str, np.ndarray]:
    """A catalogue name, or values typed inline ('-1 0 1; -2 0 2; -1 0 1'), as one 2-D array."""
    text = str(spec).strip()
    if text in KERNELS:
        return text, KERNELS[text].array()
    if not any(ch.isdigit() for ch in text):
        raise unknown_name("kernel", text, KERNELS)
    channels = parse_matrices(text, "the kernel")
    if len(channels) != 1:
        raise UserError("a kernel for an image is one matrix; '|' separates channels only in cnnlab explain.")
    return "custom", np.array(channels[0], dtype=np.float64)


def _nice(column: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale the rank-one factors so the column reads in small whole numbers where it can:
    [1 2 1] and [-1 0 1] rather than unit vectors."""
    nonzero = np.abs(column[np.abs(column) > 1e-12])
    scale = nonzero.min() * np.sign(column[np.argmax(np.abs(column) > 1e-12)])
    column, row = column / scale, row * scale
    if (row <= 1e-12).all():  # sobel-y: [-1 0 1] down times [1 2 1] across, not [1 0 -1] times [-1 -2 -1]
        column, row = -column, -row
    return _snap(column), _snap(row)


def _snap(values: np.ndarray) -> np.ndarray:
    """0.9999999999999 -> 1 and -0 -> 0, so factors print as the whole numbers they are."""
    whole = np.round(values)
    return np.where(np.abs(values - whole) < 1e-9, whole, values) + 0.0


def separability(kernel: np.ndarray) -> dict:
    """Rank by SVD: rank one means kernel = column * row, two 1-D passes."""
    u, s, vt = np.linalg.svd(kernel)
    tolerance = max(kernel.shape) * np.finfo(float).eps * (s[0] if s.size else 0.0)
    rank = int((s > tolerance).sum())
    result = {"rank": rank, "separable": rank == 1,
              "singular_values": np.where(s > tolerance, s, 0.0).tolist()}
    if rank == 1:
        column, row = _nice(u[:, 0] * s[0], vt[0])
        result.update(column=column.tolist(), row=row.tolist())
    return result


def _padded(image: torch.Tensor, kh: int, kw: int, mode: str) -> torch.Tensor:
    """Pad once, 'same' size, so the 2-D and the two 1-D passes see identical borders."""
    (top, bottom), (left, right) = same_padding(kh, 1), same_padding(kw, 1)
    torch_mode = {"zeros": "constant"}.get(mode, mode)
    try:
        return F.pad(image[None], (left, right, top, bottom), mode=torch_mode)[0]
    except (RuntimeError, NotImplementedError) as exc:
        raise UserError(f"cannot pad this image with mode '{mode}': {str(exc).splitlines()[0]}.") from None


def correlate(image: torch.Tensor, kernel: np.ndarray, padding_mode: str = "reflect") -> torch.Tensor:
    """Each channel of a C x H x W float image cross-correlated with `kernel`, same size out."""
    weight = torch.as_tensor(kernel, dtype=image.dtype)
    padded = _padded(image, *kernel.shape, padding_mode)
    channels = image.shape[0]
    return F.conv2d(padded[None], weight.expand(channels, 1, *kernel.shape), groups=channels)[0]


def correlate_separable(image: torch.Tensor, column, row, padding_mode: str = "reflect") -> torch.Tensor:
    """The same, as a vertical pass with `column` and then a horizontal pass with `row`."""
    column_k = torch.as_tensor(np.asarray(column), dtype=image.dtype).reshape(-1, 1)
    row_k = torch.as_tensor(np.asarray(row), dtype=image.dtype).reshape(1, -1)
    padded = _padded(image, column_k.shape[0], row_k.shape[1], padding_mode)[None]
    channels = image.shape[0]
    vertical = F.conv2d(padded, column_k.expand(channels, 1, -1, 1), groups=channels)
    return F.conv2d(vertical, row_k.expand(channels, 1, 1, -1), groups=channels)[0]



# ----------------------------------------------------------------------------- images

# Photographs the packages ship, so the lab works offline (scikit-image: skimage.data;
# scikit-learn: load_sample_image).
SKIMAGE_SAMPLES = ("astronaut", "camera", "coffee", "chelsea", "cat", "rocket", "moon", "coins",
                   "clock", "brick", "grass", "gravel", "text", "page", "immunohistochemistry",
                   "hubble_deep_field", "retina")
SKLEARN_SAMPLES = {"china": "china.jpg", "flower": "flower.jpg"}


def sample_names() -> list[str]:
    return sorted((*SKIMAGE_SAMPLES, *SKLEARN_SAMPLES))


def sample_image(name: str) -> np.ndarray:
    """One of the shipped photographs as uint8, H x W or H x W x 3."""
    if name in SKLEARN_SAMPLES:
        from sklearn.datasets import load_sample_image
        return load_sample_image(SKLEARN_SAMPLES[name])
    if name not in SKIMAGE_SAMPLES:
        raise unknown_name("sample image", name, sample_names())
    import skimage.data
    return getattr(skimage.data, name)()


def to_float_image(pixels) -> torch.Tensor:
    """uint8 H x W (x C) -> float64 C x H x W in [0, 1], alpha dropped."""
    array = np.asarray(pixels)
    if array.ndim == 2:
        array = array[..., None]
    array = array[..., :3] if array.shape[-1] == 4 else array
    return torch.from_numpy(np.moveaxis(array, -1, 0).astype(np.float64) / 255.0)


def load_image(image: str | None, sample: str | None) -> tuple[str, torch.Tensor]:
    if (image is None) == (sample is None):
        raise UserError("give either an image file or --sample NAME, not both and not neither.")
    if sample is not None:
        return sample, to_float_image(sample_image(sample))
    return image, to_float_image(read_image_file(image))


def read_image_file(path: str) -> np.ndarray:
    """Any image file, as uint8 H x W or H x W x 3, converted and rotated as data/images.py
    does for training (16-bit scaled, EXIF applied); a bad path is a UserError."""
    from ..data.images import decode_image
    image = decode_image(path).numpy()
    return image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)


# ----------------------------------------------------------------------------- the lab

def _display(result: torch.Tensor, kernel: np.ndarray) -> tuple[np.ndarray, str]:
    """A kernel whose weights sum to 1 keeps brightness, so its result is clipped to 0..1; any
    other (edge kernels sum to 0, the CS428 blur to 8) is stretched to the full grey range."""
    if abs(kernel.sum() - 1) < 1e-9:
        shown, note = result.clamp(0, 1), "clipped to 0..1"
    else:
        low, high = float(result.min()), float(result.max())
        shown = (result - low) / (high - low) if high > low else torch.zeros_like(result)
        note = f"stretched from {low:.3g}..{high:.3g} to 0..1"
    return np.moveaxis(shown.numpy(), 0, -1), note


def _save_picture(original: np.ndarray, shown: np.ndarray, titles: tuple[str, str], path: str) -> None:
    from matplotlib.figure import Figure

    from ..figures import save_figure
    fig = Figure(figsize=(11, 5.5))
    for ax, pixels, title in zip(fig.subplots(1, 2), (original, shown), titles):
        gray = pixels.shape[-1] == 1
        ax.imshow(pixels[..., 0] if gray else pixels, cmap="gray" if gray else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def _compare_passes(pixels: torch.Tensor, full: torch.Tensor, factors: dict, mode: str) -> dict:
    """The numbers that show two 1-D passes equal the 2-D pass."""
    two = correlate_separable(pixels, factors["column"], factors["row"], mode)
    h, w = full.shape[-2:]
    points = [(h // 2, w // 2), (h // 4, w // 3), (h - 1, w - 1)]
    return {"max_difference": float((two - full).abs().max()), "values_compared": full.numel(),
            "examples": [{"pixel": [r, c], "two_d": float(full[0, r, c]) + 0.0, "two_passes": float(two[0, r, c]) + 0.0}
                         for r, c in points]}


def kernel_lab(image: str | None = None, sample: str | None = None, kernel: str = "sobel-x",
               out: str | None = None, padding_mode: str = "reflect") -> dict:
    """`cnnlab kernels`: apply a kernel to a photograph, save both side by side, test separability.

    Reflect padding is the default because zero padding draws a false edge along the border,
    which would dominate a stretched edge map."""
    source, pixels = load_image(image, sample)
    name, weights = get_kernel(kernel)
    if padding_mode == "reflect" and min(pixels.shape[-2:]) <= max(weights.shape) // 2:
        raise UserError(f"{source} is {pixels.shape[-2]}x{pixels.shape[-1]} pixels, too small "
                        f"to reflect around a {weights.shape[0]}x{weights.shape[1]} kernel; give "
                        "a larger image or --padding-mode zeros.")
    result = correlate(pixels, weights, padding_mode)
    split = separability(weights)
    if split["separable"]:
        split.update(_compare_passes(pixels, result, split, padding_mode))
    kh, kw = weights.shape
    split["macs_per_pixel"] = {"two_d": kh * kw, "two_passes": kh + kw if split["separable"] else None}
    shown, note = _display(result, weights)
    out = out or f"kernel_{name}.png"
    original = np.moveaxis(pixels.numpy(), 0, -1)
    _save_picture(original, shown, (f"{source} (original)", f"{name}, {note}"), out)
    return {"image": source, "shape": list(pixels.shape), "kernel": name, "values": weights.tolist(),
            "sum": float(weights.sum()), "about": KERNELS[name].about if name in KERNELS else "",
            "padding_mode": padding_mode, "output_range": [float(result.min()), float(result.max())],
            "display": note, "separability": split, "out": str(out)}


def _vector(values) -> str:
    return "[" + " ".join(f"{v:.4g}" for v in values) + "]"


def format_kernel_lab(result: dict) -> str:
    from .inline import grid_text
    split = result["separability"]
    about = f" ({result['about']})" if result["about"] else ""
    lines = [f"kernel {result['kernel']}{about}:", grid_text(result["values"]),
             f"weights sum to {result['sum']:.4g}"]
    if split["separable"] and min(len(result["values"]), len(result["values"][0])) == 1:
        lines.append("separable: trivially, it is already one-dimensional")
    elif split["separable"]:
        macs = split["macs_per_pixel"]
        lines += [f"separable: yes (rank 1): column {_vector(split['column'])} times row {_vector(split['row'])}",
                  f"  two 1-D passes ({macs['two_passes']} multiply-adds per pixel) equal the 2-D pass "
                  f"({macs['two_d']}): largest difference {split['max_difference']:.2g} over "
                  f"{split['values_compared']:,} values"]
        lines += [f"  pixel ({e['pixel'][0]}, {e['pixel'][1]}): 2-D {e['two_d']:.6f}, two passes {e['two_passes']:.6f}"
                  for e in split["examples"]]
    else:
        lines.append(f"separable: no (rank {split['rank']}, singular values {_vector(split['singular_values'])}); "
                     f"it needs all {split['macs_per_pixel']['two_d']} multiply-adds per pixel")
    shape = "x".join(map(str, result["shape"]))
    lines.append(f"saved {result['out']}: {result['image']} ({shape}) left, result right ({result['display']})")
    return "\n".join(lines)
