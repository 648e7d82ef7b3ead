"""MNIST, Fashion-MNIST, CIFAR-10/100 and cifar2 from tiny files in each real format; no network."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from torchvision import datasets

from cnnlab.data import standard
from cnnlab.errors import UserError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]
# Three images per training batch, five batches; airplanes (0) and birds (2) in both splits.
CIFAR10_TRAIN_LABELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 2, 2, 9, 0]
CIFAR10_TEST_LABELS = [2, 5, 0]
MNIST_NAMES = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def random_images(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# --- MNIST IDX ---------------------------------------------------------------------------------

def write_idx(path, array: np.ndarray, magic: int) -> None:
    """IDX: a big-endian magic number (0x0803 images, 0x0801 labels), the sizes, the bytes."""
    assert magic == 0x0800 + array.ndim  # 0x08: unsigned bytes; low byte: number of dimensions
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(magic.to_bytes(4, "big") + sizes + array.astype(np.uint8).tobytes())


def write_mnist(root, folder: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    raw = root / folder / "raw"
    written = {}
    for prefix, count, seed in (("train", 5, 1), ("t10k", 3, 2)):
        images, labels = random_images(seed, (count, 28, 28)), np.arange(count) * 2 + 1
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, 0x0803)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, 0x0801)
        written[prefix] = images, labels
    return written


@pytest.mark.parametrize("load, folder, names", [(standard.mnist, "MNIST", MNIST_NAMES),
                                                 (standard.fashion_mnist, "FashionMNIST",
                                                  FASHION_NAMES)])
def test_mnist_idx_files_load_with_exact_pixels_labels_and_names(tmp_path, load, folder, names):
    written = write_mnist(tmp_path, folder)
    train, test = load(str(tmp_path))
    for split, prefix in ((train, "train"), (test, "t10k")):
        images, labels = written[prefix]
        assert split.images.dtype == torch.uint8 and split.images.shape == (len(images), 1, 28, 28)
        assert torch.equal(split.images[:, 0], torch.from_numpy(images))
        assert split.labels.dtype == torch.int64
        assert split.labels.tolist() == labels.tolist()
        assert split.classes == names


def test_damaged_idx_files_are_a_user_error(tmp_path):
    written = write_mnist(tmp_path, "MNIST")
    images_file = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    images_file.write_bytes(images_file.read_bytes()[:-100])  # header promises more than follows
    with pytest.raises(UserError, match="IDX files in .*MNIST.raw could not be read"):
        standard.mnist(str(tmp_path))
    images_file.write_bytes(b"")
    with pytest.raises(UserError, match="could not be read"):
        standard.mnist(str(tmp_path))
    write_idx(images_file, written["t10k"][0][:2], 0x0803)  # two images, three labels
    with pytest.raises(UserError, match="has 2 images but 3 labels"):
        standard.mnist(str(tmp_path))


# --- CIFAR binary ------------------------------------------------------------------------------

def write_cifar10_binary(root) -> tuple[np.ndarray, np.ndarray]:
    """Records of one label byte and 3,072 pixel bytes (R plane, G plane, B plane, row by row)."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    train, test = random_images(3, (15, 3, 32, 32)), random_images(4, (3, 3, 32, 32))
    for batch in range(5):
        rows = range(3 * batch, 3 * batch + 3)
        (folder / f"data_batch_{batch + 1}.bin").write_bytes(
            b"".join(bytes([CIFAR10_TRAIN_LABELS[i]]) + train[i].tobytes() for i in rows))
    (folder / "test_batch.bin").write_bytes(
        b"".join(bytes([label]) + image.tobytes()
                 for label, image in zip(CIFAR10_TEST_LABELS, test)))
    # The official file ends with a blank line.
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n\n")
    return train, test


def test_cifar10_binary_batches_load_with_exact_pixels_labels_and_names(tmp_path):
    train_images, test_images = write_cifar10_binary(tmp_path)
    train, test = standard.cifar10(str(tmp_path))
    assert train.images.dtype == torch.uint8 and train.images.shape == (15, 3, 32, 32)
    assert torch.equal(train.images, torch.from_numpy(train_images))
    assert torch.equal(test.images, torch.from_numpy(test_images))
    assert train.labels.dtype == torch.int64
    assert train.labels.tolist() == CIFAR10_TRAIN_LABELS
    assert test.labels.tolist() == CIFAR10_TEST_LABELS
    assert train.classes == test.classes == CIFAR10_NAMES
    # Straight from the file's bytes: the green plane (1), row 5, column 7 of the first image.
    record = (tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin").read_bytes()
    assert train.images[0, 1, 5, 7] == record[1 + 1 * 1024 + 5 * 32 + 7]
    assert train.images[0, 2, 31, 0] == record[1 + 2 * 1024 + 31 * 32 + 0]


def test_cifar100_binary_uses_the_fine_label(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    images, fine, coarse = random_images(5, (4, 3, 32, 32)), [99, 3, 42, 0], [19, 1, 7, 5]
    for name, rows in (("train.bin", range(3)), ("test.bin", range(3, 4))):
        (folder / name).write_bytes(
            b"".join(bytes([coarse[i], fine[i]]) + images[i].tobytes() for i in rows))
    names = [f"fine_{i:02d}" for i in range(100)]
    (folder / "fine_label_names.txt").write_text("\n".join(names) + "\n\n")
    train, test = standard.cifar100(str(tmp_path))
    assert train.labels.tolist() == [99, 3, 42] and test.labels.tolist() == [0]
    assert torch.equal(train.images, torch.from_numpy(images[:3]))
    assert torch.equal(test.images, torch.from_numpy(images[3:]))
    assert train.classes == names


def test_cifar2_is_exactly_the_airplanes_and_birds_relabelled(tmp_path):
    train_images, test_images = write_cifar10_binary(tmp_path)
    train, test = standard.cifar2(str(tmp_path))
    for split, images, labels in ((train, train_images, CIFAR10_TRAIN_LABELS),
                                  (test, test_images, CIFAR10_TEST_LABELS)):
        kept = [i for i, label in enumerate(labels) if label in (0, 2)]
        assert split.labels.tolist() == [{0: 0, 2: 1}[labels[i]] for i in kept]
        assert torch.equal(split.images, torch.from_numpy(images[kept]))
        assert split.classes == ["airplane", "bird"]


def test_damaged_cifar_binary_files_are_a_user_error(tmp_path):
    write_cifar10_binary(tmp_path)
    folder = tmp_path / "cifar-10-batches-bin"
    batch = folder / "data_batch_2.bin"
    good = batch.read_bytes()
    batch.write_bytes(good[:-1])
    with pytest.raises(UserError, match="data_batch_2.bin is not a CIFAR binary batch"):
        standard.cifar10(str(tmp_path))
    batch.write_bytes(bytes([10]) + good[1:])  # there is no class 10 in CIFAR-10
    with pytest.raises(UserError, match="label 10, outside 0..9"):
        standard.cifar10(str(tmp_path))
    batch.write_bytes(good)
    (folder / "batches.meta.txt").write_text("airplane\nbird\n")
    with pytest.raises(UserError, match="should list 10 class names"):
        standard.cifar10(str(tmp_path))


# --- CIFAR python (pickled) release ------------------------------------------------------------

class Trap:
    """Unpickling this opens (creates) the marker file: a marker means a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def python_batch(labels, images, extra=None) -> bytes:
    """A batch as the python release pickles it: a dict of labels, N x 3072 pixels, file names."""
    batch = {"batch_label": "training batch", "labels": list(labels),
             "data": images.reshape(len(images), -1), "filenames": [f"{i}.png" for i in labels]}
    return pickle.dumps({**batch, **(extra or {})}, protocol=2)


def write_cifar10_python(root, extra=None) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train, test = random_images(6, (15, 3, 32, 32)), random_images(7, (3, 3, 32, 32))
    for batch in range(5):
        rows = slice(3 * batch, 3 * batch + 3)
        (folder / f"data_batch_{batch + 1}").write_bytes(
            python_batch(CIFAR10_TRAIN_LABELS[rows], train[rows], extra))
    (folder / "test_batch").write_bytes(python_batch(CIFAR10_TEST_LABELS, test, extra))
    (folder / "batches.meta").write_bytes(
        pickle.dumps({"label_names": CIFAR10_NAMES, "num_vis": 3072, **(extra or {})}))
    return train, test


def test_trap_pickle_would_write_its_marker_if_loaded(tmp_path):
    # Proves the refusal test below can fail: loading one of its files does leave the marker.
    marker = tmp_path / "unpickled"
    handle = pickle.loads(python_batch([0], random_images(0, (1, 3, 32, 32)), {"x": Trap(marker)}))
    handle["x"].close()
    assert marker.exists()


def test_python_cifar_with_unofficial_checksums_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    write_cifar10_python(tmp_path / "data", {"trap": Trap(marker)})
    with pytest.raises(UserError) as error:
        standard.cifar10(str(tmp_path / "data"))
    message = str(error.value)
    assert "cifar-10-batches-py does not hold the official CIFAR-10 python files" in message
    assert "use the binary version" in message
    assert str(tmp_path / "data" / "cifar-10-batches-bin" / "data_batch_1.bin") in message
    assert not marker.exists()


def test_binary_release_is_preferred_to_a_python_one_beside_it(tmp_path):
    marker = tmp_path / "unpickled"
    write_cifar10_python(tmp_path / "data", {"trap": Trap(marker)})
    train_images, _ = write_cifar10_binary(tmp_path / "data")
    train, _ = standard.cifar10(str(tmp_path / "data"))
    assert torch.equal(train.images, torch.from_numpy(train_images))
    assert not marker.exists()


def test_python_cifar_with_matching_checksums_loads_through_torchvision(tmp_path, monkeypatch):
    train_images, test_images = write_cifar10_python(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    md5 = lambda name: hashlib.md5((folder / name).read_bytes()).hexdigest()  # noqa: E731
    # Stand-in for the official checksums: ours are the only files that match them.
    monkeypatch.setattr(datasets.CIFAR10, "train_list",
                        [[f"data_batch_{i}", md5(f"data_batch_{i}")] for i in range(1, 6)])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setattr(datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                                   "md5": md5("batches.meta")})
    train, test = standard.cifar10(str(tmp_path))
    assert torch.equal(train.images, torch.from_numpy(train_images))  # N x C x H x W again
    assert torch.equal(test.images, torch.from_numpy(test_images))
    assert train.labels.tolist() == CIFAR10_TRAIN_LABELS and train.labels.dtype == torch.int64
    assert train.classes == CIFAR10_NAMES


# --- Missing files and downloads ---------------------------------------------------------------

IDX = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
CIFAR10_FILES = [f"cifar-10-batches-bin/{name}" for name in
                 [f"data_batch_{i}.bin" for i in range(1, 6)]
                 + ["test_batch.bin", "batches.meta.txt"]]
EXPECTED_FILES = [
    (standard.mnist, [f"MNIST/raw/{name}" for name in IDX]),
    (standard.fashion_mnist, [f"FashionMNIST/raw/{name}" for name in IDX]),
    (standard.cifar10, CIFAR10_FILES),
    (standard.cifar2, CIFAR10_FILES),
    (standard.cifar100, [f"cifar-100-binary/{name}" for name in
                         ("train.bin", "test.bin", "fine_label_names.txt")]),
]


def assert_names_every_file(message: str, root, files) -> None:
    for name in files:
        assert str(root / name) in message
    assert "--download" in message and "\n" not in message and message.endswith(".")


@pytest.mark.parametrize("load, files", EXPECTED_FILES)
def test_missing_files_are_named_with_their_full_paths(tmp_path, load, files):
    with pytest.raises(UserError, match="is missing: put ") as error:
        load(str(tmp_path))
    assert_names_every_file(str(error.value), tmp_path, files)


def test_only_the_missing_cifar_batch_is_named(tmp_path):
    write_cifar10_binary(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    with pytest.raises(UserError) as error:
        standard.cifar10(str(tmp_path))
    assert str(tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin") in str(error.value)
    assert "data_batch_1.bin" not in str(error.value)


def serve(monkeypatch, pages: dict[str, bytes]) -> list[str]:
    """Replace the network: `pages` answer their URLs, anything else fails as when offline."""
    asked = []

    def urlopen(request, *args, **kwargs):
        url = getattr(request, "full_url", request)
        asked.append(url)
        if url not in pages:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        response = io.BytesIO(pages[url])
        response.url, response.length = url, len(pages[url])
        return response

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return asked


@pytest.mark.parametrize("load, files", EXPECTED_FILES)
def test_download_without_a_network_is_a_user_error_naming_the_files(tmp_path, monkeypatch,
                                                                     load, files):
    asked = serve(monkeypatch, {})
    offline = "could not be downloaded .*Temporary failure in name resolution"
    with pytest.raises(UserError, match=offline) as error:
        load(str(tmp_path), download=True)
    assert asked, "the download was never attempted"
    assert_names_every_file(str(error.value), tmp_path, files)


def cifar10_archive(tmp_path) -> tuple[bytes, np.ndarray]:
    """cifar-10-binary.tar.gz as the official one is laid out: one cifar-10-batches-bin folder."""
    made = tmp_path / "made"
    train_images, _ = write_cifar10_binary(made)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(made / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    return buffer.getvalue(), train_images


def test_download_fetches_the_official_binary_url_and_checks_its_md5(tmp_path, monkeypatch):
    archive, train_images = cifar10_archive(tmp_path)
    official_url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    asked = serve(monkeypatch, {official_url: archive})
    # Only the checksum is ours: the official one belongs to the real 162 MB archive.
    monkeypatch.setattr(standard, "CIFAR10", dataclasses.replace(
        standard.CIFAR10, md5=hashlib.md5(archive).hexdigest()))
    train, _ = standard.cifar10(str(tmp_path / "data"), download=True)
    assert official_url in asked
    assert torch.equal(train.images, torch.from_numpy(train_images))
    assert not (tmp_path / "data" / "cifar-10-binary.tar.gz").exists()  # extracted, then dropped


def test_download_with_the_wrong_md5_is_refused(tmp_path, monkeypatch):
    archive, _ = cifar10_archive(tmp_path)
    serve(monkeypatch, {standard.CIFAR10.url: archive})  # not the official archive: md5 differs
    with pytest.raises(UserError, match="could not be downloaded .*corrupted"):
        standard.cifar10(str(tmp_path / "data"), download=True)
    assert not (tmp_path / "data" / "cifar-10-batches-bin").exists()
