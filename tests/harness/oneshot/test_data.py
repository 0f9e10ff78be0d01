"""Dataset loading: CIFAR-10 layouts agree, the cache is rebuilt when it should be, splits are fixed."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import harness.oneshot.data as data
from harness.errors import DataFileError, UnknownNameError, UserError
from harness.interrupts import interruptible
from harness.oneshot.data import (
    CIFAR10_CLASSES,
    CacheWarning,
    balanced_split,
    cache_paths,
    channel_stats,
    load_dataset,
    locate_cifar10,
    parse_idx,
    read_idx,
)

ROOT = Path(__file__).resolve().parents[3]
PER_CLASS_TRAIN, PER_CLASS_TEST = 4, 2


def tiny_cifar(seed: int = 0) -> dict[str, np.ndarray]:
    """A few random 32x32 RGB images per class, class-major order (as an ImageFolder sorts them)."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, per_class in (("train", PER_CLASS_TRAIN), ("test", PER_CLASS_TEST)):
        out[f"{split}_x"] = rng.integers(0, 256, (10 * per_class, 32, 32, 3), dtype=np.uint8)
        out[f"{split}_y"] = np.repeat(np.arange(10), per_class)
    return out


def write_image_folder(root: Path, images: dict[str, np.ndarray]) -> Path:
    for split in ("train", "test"):
        for i, (pixels, label) in enumerate(zip(images[f"{split}_x"], images[f"{split}_y"], strict=True)):
            folder = root / split / CIFAR10_CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")  # PNG: lossless, so pixels survive
    return root


def write_cifar_pickles(root: Path, images: dict[str, np.ndarray]) -> Path:
    """torchvision's cifar-10-batches-py: dicts of a (N, 3072) uint8 array and a label list."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def dump(name: str, x: np.ndarray, y: np.ndarray) -> None:
        batch = {"batch_label": name, "data": x.transpose(0, 3, 1, 2).reshape(len(x), -1),
                 "labels": [int(v) for v in y], "filenames": [f"{i}.png" for i in range(len(x))]}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)

    chunks = np.array_split(np.arange(len(images["train_y"])), 5)
    for b, chunk in enumerate(chunks, start=1):
        dump(f"data_batch_{b}", images["train_x"][chunk], images["train_y"][chunk])
    dump("test_batch", images["test_x"], images["test_y"])
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072}, handle, protocol=2)
    return root


@pytest.fixture
def images() -> dict[str, np.ndarray]:
    return tiny_cifar()


@pytest.fixture
def folder(tmp_path, images) -> Path:
    return write_image_folder(tmp_path / "folder", images)


def as_nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def test_image_folder_and_pickles_give_identical_arrays(tmp_path, images, folder):
    pickles = write_cifar_pickles(tmp_path / "pickles", images)
    a = load_dataset("cifar10", folder, tmp_path / "cache")
    b = load_dataset("cifar10", pickles, tmp_path / "cache")
    assert a.source.startswith("image-folder:") and b.source.startswith("cifar-pickles:")
    for field in ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y", "train_index", "valid_index"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert a.mean == b.mean and a.std == b.std and a.classes == b.classes == CIFAR10_CLASSES
    # The arrays are the original pixels, NCHW, split by the recorded indices.
    original = as_nchw(images["train_x"])
    assert a.train_x.dtype == torch.uint8 and a.train_x.shape == (20, 3, 32, 32)
    assert torch.equal(a.train_x, original[a.train_index]) and torch.equal(a.valid_x, original[a.valid_index])
    assert torch.equal(a.test_x, as_nchw(images["test_x"]))
    assert torch.equal(a.train_y, torch.from_numpy(images["train_y"])[a.train_index])
    assert a.num_classes == 10 and a.image_shape == (3, 32, 32)


def test_tarballs_read_without_unpacking(tmp_path, images, folder):
    jpeg_like = tmp_path / "cifar10-images.tar.gz"
    with tarfile.open(jpeg_like, "w:gz") as archive:
        archive.add(folder, arcname="cifar10")  # a top-level folder is allowed
    pickles = write_cifar_pickles(tmp_path / "pickles", images)
    python_tar = tmp_path / "dl" / "cifar-10-python.tar.gz"
    python_tar.parent.mkdir()
    with tarfile.open(python_tar, "w:gz") as archive:
        archive.add(pickles / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    reference = load_dataset("cifar10", folder, tmp_path / "cache")
    from_tar = load_dataset("cifar10", jpeg_like, tmp_path / "cache")
    from_dir_with_tar = load_dataset("cifar10", python_tar.parent, tmp_path / "cache")  # found by name
    assert from_tar.source.startswith("tar:") and from_dir_with_tar.source == f"tar:{python_tar.resolve()}"
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as archive:
        archive.add(folder, arcname=".")
    from_plain = load_dataset("cifar10", plain, tmp_path / "cache")
    for dataset in (from_tar, from_dir_with_tar, from_plain):
        assert torch.equal(dataset.train_x, reference.train_x) and torch.equal(dataset.test_y, reference.test_y)

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(jpeg_like.read_bytes()[: jpeg_like.stat().st_size // 2])
    with pytest.raises(DataFileError, match="truncated.tar.gz") as excinfo:
        load_dataset("cifar10", truncated, tmp_path / "cache")
    one_line_error(excinfo)


def test_cache_is_reused_then_rebuilt_when_the_source_changes(tmp_path, folder, monkeypatch):
    builds = []
    real_build = data.build_arrays
    monkeypatch.setattr(data, "build_arrays", lambda *a, **k: builds.append(1) or real_build(*a, **k))
    cache = tmp_path / "cache"
    first = load_dataset("cifar10", folder, cache)
    second = load_dataset("cifar10", folder, cache)
    assert len(builds) == 1 and torch.equal(first.train_x, second.train_x)
    npz, sidecar = cache_paths(locate_cifar10(folder), cache)
    meta = json.loads(sidecar.read_text())
    assert meta["sha256"] == data._sha256_file(npz) and meta["split_seed"] == data.SPLIT_SEED

    target = folder / "test" / "cat" / sorted(os.listdir(folder / "test" / "cat"))[0]
    Image.fromarray(np.full((32, 32, 3), 7, dtype=np.uint8)).save(target)
    os.utime(target, ns=(1, 1_000_000_000))  # a certain mtime change, whatever the clock's resolution
    third = load_dataset("cifar10", folder, cache)
    assert len(builds) == 2
    assert (third.test_x == 7).all(dim=(1, 2, 3)).sum() == 1
    assert json.loads(sidecar.read_text())["fingerprint"] != meta["fingerprint"]


def test_corrupt_cache_fails_its_checksum_and_is_rebuilt(tmp_path, folder):
    cache = tmp_path / "cache"
    good = load_dataset("cifar10", folder, cache)
    npz, sidecar = cache_paths(locate_cifar10(folder), cache)
    raw = bytearray(npz.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the image data
    npz.write_bytes(bytes(raw))
    with pytest.warns(CacheWarning, match="SHA-256"):
        again = load_dataset("cifar10", folder, cache)
    assert torch.equal(again.train_x, good.train_x)
    assert json.loads(sidecar.read_text())["sha256"] == data._sha256_file(npz)


def test_split_is_fixed_disjoint_and_class_balanced(tmp_path, folder):
    a = load_dataset("cifar10", folder, tmp_path / "one")
    b = load_dataset("cifar10", folder, tmp_path / "two")
    assert torch.equal(a.train_index, b.train_index)
    train, valid = set(a.train_index.tolist()), set(a.valid_index.tolist())
    assert not train & valid and train | valid == set(range(10 * PER_CLASS_TRAIN))
    assert torch.bincount(a.train_y).tolist() == torch.bincount(a.valid_y).tolist() == [PER_CLASS_TRAIN // 2] * 10

    labels = np.repeat(np.arange(3), 100)
    kept, taken = balanced_split(labels, 0.5, np.random.default_rng(0))
    again, _ = balanced_split(labels, 0.5, np.random.default_rng(0))
    other, _ = balanced_split(labels, 0.5, np.random.default_rng(1))
    assert np.array_equal(kept, again) and not np.array_equal(kept, other)
    assert np.bincount(labels[kept]).tolist() == np.bincount(labels[taken]).tolist() == [50, 50, 50]


def test_channel_stats_are_exact():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(x)
    as_float = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean, as_float.mean(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(std, as_float.std(axis=(0, 2, 3)), atol=1e-12)


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_missing_data_is_one_line_listing_the_layouts(tmp_path, kind):
    path = {"missing": tmp_path / "nowhere", "empty": tmp_path, "file": tmp_path / "x.txt"}[kind]
    if kind == "file":
        path.write_text("not data")
    with pytest.raises(DataFileError) as excinfo:
        load_dataset("cifar10", path, tmp_path / "cache")
    message = one_line_error(excinfo)
    assert str(path) in message and "cifar-10-batches-py" in message and "ImageFolder" in message


def test_no_data_dir_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(DataFileError, match="--data-dir") as excinfo:
        load_dataset("cifar10", None, tmp_path)
    one_line_error(excinfo)


def test_incomplete_sources_name_what_is_missing(tmp_path, images, folder):
    pickles = write_cifar_pickles(tmp_path / "pickles", images)
    (pickles / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataFileError, match="missing data_batch_3") as excinfo:
        load_dataset("cifar10", pickles, tmp_path / "cache")
    one_line_error(excinfo)

    for image in (folder / "test" / "dog").iterdir():
        image.unlink()
    (folder / "test" / "dog").rmdir()
    with pytest.raises(DataFileError, match="classes") as excinfo:
        load_dataset("cifar10", folder, tmp_path / "cache")
    one_line_error(excinfo)

    only_train = tmp_path / "only-train"
    (only_train / "train").mkdir(parents=True)
    with pytest.raises(DataFileError, match="no test/ folder"):
        load_dataset("cifar10", only_train, tmp_path / "cache")


def test_truncated_extraction_is_caught(tmp_path, folder):
    victim = sorted((folder / "train" / "frog").iterdir())[0]
    victim.unlink()
    with pytest.raises(DataFileError, match="unequal class counts") as excinfo:
        load_dataset("cifar10", folder, tmp_path / "cache")
    one_line_error(excinfo)


def test_hostile_pickle_is_refused(tmp_path, images):
    pickles = write_cifar_pickles(tmp_path / "pickles", images)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    (pickles / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Exploit()}))
    with pytest.raises(DataFileError, match="refusing"):
        load_dataset("cifar10", pickles, tmp_path / "cache")


def test_download_without_torchvision_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(UserError, match="torchvision") as excinfo:
        load_dataset("cifar10", tmp_path / "dl", tmp_path / "cache", download=True)
    one_line_error(excinfo)


def test_unknown_names(tmp_path):
    with pytest.raises(UnknownNameError, match="cifar10, fashion-mnist, digits"):
        load_dataset("imagenet", tmp_path)
    with pytest.raises(UnknownNameError):
        load_dataset("digits").split("validation")


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_idx_reader_raw_and_gzipped(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "raw").write_bytes(idx_bytes(images))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(idx_bytes(images)))
    wide = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "wide").write_bytes(idx_bytes(wide))
    assert np.array_equal(read_idx(tmp_path / "raw"), images)
    assert np.array_equal(read_idx(tmp_path / "packed.gz"), images)
    assert read_idx(tmp_path / "wide").tolist() == [1, -2, 70000]
    with pytest.raises(DataFileError, match="magic"):
        parse_idx(b"\x1f\x00\x08\x01")
    with pytest.raises(DataFileError, match="needs 24"):
        parse_idx(idx_bytes(images)[:-1])


def write_fashion(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> None:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        for kind, array in (("images-idx3", x), ("labels-idx1", y)):
            raw = idx_bytes(array)
            name = folder / f"{prefix}-{kind}-ubyte"
            if gz:
                Path(f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                name.write_bytes(raw)


@pytest.mark.parametrize("layout", ["gz", "raw-torchvision"])
def test_fashion_mnist_from_idx_files(tmp_path, layout):
    root = tmp_path / "fm"
    write_fashion(root if layout == "gz" else root / "FashionMNIST" / "raw", gz=layout == "gz")
    dataset = load_dataset("fashion-mnist", root, tmp_path / "cache")
    assert dataset.train_x.shape == dataset.valid_x.shape == (10, 1, 28, 28)
    assert dataset.test_x.shape == (10, 1, 28, 28) and dataset.num_classes == 10
    assert dataset.classes[0] == "T-shirt/top" and len(dataset.mean) == 1


def test_fashion_mnist_incomplete(tmp_path):
    write_fashion(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFileError, match="missing t10k-labels-idx1-ubyte") as excinfo:
        load_dataset("fashion-mnist", tmp_path / "fm", tmp_path / "cache")
    one_line_error(excinfo)


@pytest.mark.skipif(not data.FASHION_MNIST_DEFAULT_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_the_debian_package(tmp_path):
    dataset = load_dataset("fashion-mnist", None, tmp_path)
    assert len(dataset.train_y) == len(dataset.valid_y) == 30_000 and len(dataset.test_y) == 10_000
    assert abs(dataset.mean[0] - 0.286) < 0.001 and abs(dataset.std[0] - 0.353) < 0.001


def test_digits():
    a, b = load_dataset("digits"), load_dataset("DIGITS")
    assert a.image_shape == (1, 8, 8) and a.num_classes == 10 and a.flip is False
    sizes = [len(a.train_y), len(a.valid_y), len(a.test_y)]
    assert sum(sizes) == 1797 and abs(sizes[0] - sizes[1]) <= 10 and 290 <= sizes[2] <= 310
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert int(a.train_x.max()) == 255 and a.train_x.dtype == torch.uint8
    assert set(a.train_index.tolist()).isdisjoint(a.valid_index.tolist())


def test_dataset_batches_use_its_statistics():
    dataset = load_dataset("digits")
    batches = list(dataset.batches("train", 64, torch.Generator().manual_seed(0), augment=False, drop_last=False))
    images = torch.cat([x for x, _ in batches])
    assert images.shape == (len(dataset.train_y), 1, 8, 8)
    assert abs(float(images.mean())) < 0.05 and abs(float(images.std()) - 1) < 0.05


def encoded(images: np.ndarray, fmt: str, **options) -> list[bytes]:
    blobs = []
    for pixels in images:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=fmt, **options)
        blobs.append(buffer.getvalue())
    return blobs


def test_parallel_decoding_matches_serial_and_reports_bad_files(monkeypatch, images):
    monkeypatch.setattr(data, "_PARALLEL_MIN_IMAGES", 0)
    smooth = np.repeat(np.repeat(images["train_x"][:, ::8, ::8], 8, axis=1), 8, axis=2)  # JPEG-friendly blocks
    blobs = encoded(smooth, "JPEG", quality=95, subsampling=0)
    names = [f"img{i}.jpg" for i in range(len(blobs))]
    serial = data.decode_images(blobs, names, workers=1)
    parallel = data.decode_images(blobs, names, workers=2)
    assert np.array_equal(serial, parallel) and serial.shape == (40, 3, 32, 32)
    assert np.abs(serial.astype(int) - smooth.transpose(0, 3, 1, 2)).mean() < 3  # JPEG is lossy, but close
    blobs[25] = b"not an image"
    with pytest.raises(DataFileError, match="img25.jpg"):
        data.decode_images(blobs, names, workers=2)


def test_digits_indices_point_into_all_images():
    from sklearn.datasets import load_digits

    dataset = load_dataset("digits")
    labels = torch.from_numpy(load_digits().target)
    assert torch.equal(labels[dataset.train_index], dataset.train_y)
    assert torch.equal(labels[dataset.valid_index], dataset.valid_y)


def test_data_dir_from_the_environment(tmp_path, monkeypatch, folder):
    write_fashion(tmp_path / "root" / "FashionMNIST" / "raw")
    (tmp_path / "root" / "cifar").symlink_to(folder)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "root" / "cifar"))
    assert load_dataset("cifar10", None, tmp_path / "cache").source == f"image-folder:{folder}"
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "root"))
    assert len(load_dataset("fashion-mnist", None, tmp_path / "cache").test_y) == 10


# -- the decoding pool and stop signals ------------------------------------------------------


def test_decoding_workers_ignore_the_parents_stop_handlers(tmp_path, monkeypatch, images, capfd):
    """Workers forked under ``interruptible`` (whose handlers raise KeyboardInterrupt) start with
    SIGINT ignored, SIGTERM the default and neither blocked, so closing the pool prints nothing."""
    parent, decode = os.getpid(), data._decode_images

    def decode_and_record(blobs, names, out=None):
        if os.getpid() != parent:
            handlers = {sig.name: getattr(signal.getsignal(sig), "name", "a Python function")
                        for sig in (signal.SIGINT, signal.SIGTERM)}
            blocked = sorted(s.name for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
            (tmp_path / f"{os.getpid()}.json").write_text(json.dumps({**handlers, "blocked": blocked}))
        return decode(blobs, names, out)

    monkeypatch.setattr(data, "_PARALLEL_MIN_IMAGES", 0)
    monkeypatch.setattr(data, "_decode_images", decode_and_record)
    blobs = encoded(images["train_x"], "PNG")
    names = [f"img{i}.png" for i in range(len(blobs))]
    with interruptible():
        decoded = data.decode_images(blobs, names, workers=2)
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)  # the parent's, kept
    assert np.array_equal(decoded, images["train_x"].transpose(0, 3, 1, 2))
    records = [json.loads(path.read_text()) for path in tmp_path.glob("*.json")]
    assert records, "no worker decoded anything"
    for record in records:
        assert record["SIGINT"] == "SIG_IGN" and record["SIGTERM"] == "SIG_DFL"
        assert "SIGINT" not in record["blocked"] and "SIGTERM" not in record["blocked"]
    assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, [])  # mask restored
    assert "Traceback" not in capfd.readouterr().err


#: Decoding a small ImageFolder with the process pool, as CIFAR-10's 60,000 images are. ``load``:
#: load it under ``interruptible`` (as every data command runs); ``block CLI-ARGS``: run the
#: command, each worker printing "decoding" and then waiting until the parent's pool ends it.
DECODING = """
import os, sys, threading
import harness.oneshot.data as data
from harness.cli import main
from harness.interrupts import interruptible

data._PARALLEL_MIN_IMAGES = 0
data._idle_cores = lambda limit=2: 2
if sys.argv[1] == "load":
    with interruptible():
        print(data.load_dataset("cifar10", sys.argv[2], sys.argv[3]))
    sys.exit(0)
parent, decode = os.getpid(), data._decode_images

def decode_or_block(blobs, names, out=None):
    if os.getpid() != parent:
        os.write(1, b"decoding\\n")
        threading.Event().wait()
    return decode(blobs, names, out)

data._decode_images = decode_or_block
sys.exit(main(sys.argv[2:]))
"""


def test_decoding_with_the_pool_prints_no_traceback(tmp_path, folder):
    done = subprocess.run([sys.executable, "-c", DECODING, "load", str(folder), str(tmp_path / "cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Dataset('cifar10', train=20, valid=20, test=20")
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 1


@pytest.mark.parametrize("how", ["SIGTERM to the command", "SIGINT to its process group (Ctrl-C)"])
def test_a_signal_while_workers_decode_is_one_line_exit_130_and_no_cache(tmp_path, folder, how):
    train = ["train", "--method", "spos", "--dataset", "cifar10", "--data-dir", str(folder), "--cache-dir",
             str(tmp_path / "cache"), "--epochs", "1", "--out", str(tmp_path / "run"), "--no-mlflow", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-c", DECODING, "block", *train],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline() == "decoding\n"  # a worker is decoding (and will until it is ended)
        if how.startswith("SIGTERM"):
            os.kill(proc.pid, signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr.splitlines() == [f"nas-harness: interrupted: stopped by {how.split()[0]}; continue with the same "
                                   "command and --resume (from the last checkpoint, if any)"], stderr
    left = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert all(name.endswith(".lock") for name in left), left  # no cache file, whole or partial
