"""Image data for training networks: CIFAR-10, Fashion-MNIST and scikit-learn's digits in memory.

``load_dataset(name, data_dir, cache_dir)`` returns a :class:`Dataset` of uint8 tensors in
**NCHW** layout (``N x C x H x W``, values 0-255) and int64 labels, split the NAS-Bench-201
way: the official training images are halved into ``train`` and ``valid`` by a fixed,
seeded, class-balanced split, and ``test`` is the official test set. The split is drawn
once, saved with the cache and exposed as ``train_index`` / ``valid_index`` (positions in
the source's training images). It follows NB201's convention (25,000 / 25,000 for
CIFAR-10) but is not NB201's own index file, which refers to the pickles' image order.

Sources (a user-given ``data_dir``, else ``$NAS_HARNESS_DATA_DIR``):

* ``cifar10``: torchvision's ``cifar-10-batches-py`` pickles (read with a restricted
  unpickler and numpy, no torchvision), the ImageFolder layout ``train/<class>/*`` and
  ``test/<class>/*`` (JPEG, PNG, ... decoded with Pillow), or a ``.tar.gz`` / ``.tar`` of
  either, read member by member without unpacking. ImageFolder images are ordered by
  class (sorted names, as torchvision does), then by file name. With ``download=True``
  torchvision fetches the pickles into ``data_dir`` when it is installed and a network
  exists.
* ``fashion-mnist``: the four IDX files, raw or gzipped, in ``data_dir``, its
  ``FashionMNIST/raw`` (torchvision's layout), or by default ``/usr/share/datasets/fashion-mnist``
  (Debian's ``dataset-fashion-mnist``). 60,000 training images become 30,000 / 30,000.
* ``digits``: scikit-learn's embedded 1,797 8x8 digits, kept at 8x8, one channel,
  levels 0-16 scaled to 0-255. Having no official test set, a seeded class-balanced
  sixth of it is the test set and the rest is halved into train / valid. No cache.

Decoding runs once per source: the arrays go to ``<cache_dir>/<name>-<key>.npz`` (plain
arrays, read back with ``allow_pickle=False``) with a JSON sidecar holding the file's
SHA-256 and a fingerprint of the source (every file's path, size and mtime for a folder;
the SHA-256 of a tarball). A changed source or a cache failing its checksum is rebuilt,
the latter with a :class:`CacheWarning`. Channel ``mean`` / ``std`` (0-1 scale) are taken
over all official training images (train + valid, never test), like NB201's constants.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import mmap
import multiprocessing
import os
import pickle
import struct
import tarfile
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from harness.errors import DataFileError, UnknownNameError, UserError
from harness.filelock import locked
from harness.interrupts import forking_workers, worker_ignores_stop_signals

DATASETS = ("cifar10", "fashion-mnist", "digits")
ALIASES = {"cifar-10": "cifar10", "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
           "fmnist": "fashion-mnist"}
DATA_DIR_ENV = "NAS_HARNESS_DATA_DIR"
FASHION_MNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_VERSION = 1
#: Seed of the train / valid split (and of the digits' test split); part of the cache key.
SPLIT_SEED = 201

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
CIFAR_PICKLES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR_TARBALLS = ("cifar10-jpeg.tar.gz", "cifar-10-python.tar.gz")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

CIFAR10_LAYOUTS = (
    "accepted layouts: <dir>/cifar-10-batches-py/{data_batch_1..5,test_batch} (torchvision's pickles), "
    "<dir>/{train,test}/<class>/<image>.jpg|png (ImageFolder), a .tar.gz of either "
    f"({' or '.join(CIFAR_TARBALLS)}) given as the path or inside <dir>, or download=True (--download) "
    "with torchvision installed"
)
FASHION_MNIST_LAYOUTS = (
    f"accepted layouts: <dir>/{{{','.join(FASHION_MNIST_FILES)}}}[.gz] or the same under "
    f"<dir>/FashionMNIST/raw; default dir {FASHION_MNIST_DEFAULT_DIR} (apt-get install dataset-fashion-mnist)"
)

#: Below this many images, decoding stays in-process (a pool costs more than it saves).
_PARALLEL_MIN_IMAGES = 4096


class CacheWarning(UserWarning):
    """A dataset cache that failed its checksum (or could not be written); the data is rebuilt."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images as uint8 NCHW tensors (0-255) with int64 labels, split train / valid / test.

    ``mean`` / ``std`` are per channel on the 0-1 scale; ``crop_padding`` and ``flip`` are
    the dataset's standard augmentation (see ``harness.oneshot.augment``).
    """

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_index: torch.Tensor
    valid_index: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int
    flip: bool
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)``."""
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> Dataset:
        """This dataset with its images and labels on ``device`` (itself when they are there already).

        On a GPU the uint8 images stay resident (CIFAR-10: 184 MB) and every batch is cut,
        augmented and normalised there, so no image crosses the bus during training.
        """
        device = torch.device(device)
        names = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")
        if all(getattr(self, name).device == device for name in names):
            return self
        return dataclasses.replace(self, **{name: getattr(self, name).to(device) for name in names})

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of 'train', 'valid' or 'test'."""
        if name not in ("train", "valid", "test"):
            raise UnknownNameError(f"unknown split {name!r}; accepted: train, valid, test")
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")

    def batches(self, split: str, batch_size: int, generator: torch.Generator | None, augment: bool = True,
                drop_last: bool = True, **options) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of normalised float batches of a split (``harness.oneshot.augment.iterate_batches``)."""
        from harness.oneshot.augment import iterate_batches

        options.setdefault("padding", self.crop_padding)
        options.setdefault("flip", self.flip)
        x, y = self.split(split)
        return iterate_batches(x, y, batch_size, generator, augment=augment, drop_last=drop_last,
                               mean=self.mean, std=self.std, **options)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(getattr(self, f'{s}_y'))}" for s in ("train", "valid", "test"))
        return f"Dataset({self.name!r}, {sizes}, image_shape={self.image_shape}, source={self.source!r})"


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    workers: int | None = None,
    verify: bool = True,
) -> Dataset:
    """Load a dataset by name ('cifar10', 'fashion-mnist', 'digits'), decoding it at most once.

    ``cache_dir`` defaults to ``$NAS_HARNESS_CACHE/datasets`` (else ``~/.cache/nas-harness/datasets``);
    ``workers`` processes decode JPEGs (default: the idle cores, at most 2); ``verify`` checks the
    cache's SHA-256.
    Raises a one-line ``DataFileError`` when the data is missing, incomplete or unreadable.
    """
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise UnknownNameError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")
    if key == "digits":
        return _to_dataset("digits", digits_arrays(), "sklearn.datasets.load_digits")
    source = locate_cifar10(data_dir, download) if key == "cifar10" else locate_fashion_mnist(data_dir, download)
    arrays = _load_or_build(source, _cache_root(cache_dir), workers, verify)
    return _to_dataset(key, arrays, f"{source.layout}:{source.path}")


@dataclass(frozen=True)
class DataSettings:
    """Which dataset a command works on and where its files are (the arguments of ``load_dataset``).

    ``dataset=None`` means "the one the checkpoint was trained on" where a command reads one.
    """

    dataset: str | None = "cifar10"
    data_dir: Path | None = None
    cache_dir: Path | None = None
    download: bool = False

    def load(self) -> Dataset:
        if self.dataset is None:
            raise UserError("no dataset named; pass --dataset")
        return load_dataset(self.dataset, self.data_dir, self.cache_dir, download=self.download)

    def or_trained_on(self, checkpoints: list[dict]) -> DataSettings:
        """These settings, with the dataset the checkpoints were trained on when none was named."""
        if self.dataset is not None:
            return self
        trained_on = sorted({payload["dataset"] for payload in checkpoints})
        if len(trained_on) != 1:
            raise UserError(f"the checkpoints were trained on different datasets ({', '.join(trained_on)}); "
                            f"rank those of one dataset at a time")
        return dataclasses.replace(self, dataset=trained_on[0])


# ---------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Source:
    """Where a dataset's files are: ``layout`` is one of 'cifar-pickles', 'image-folder', 'tar', 'idx'."""

    dataset: str
    layout: str
    path: Path
    files: tuple[Path, ...] = ()

    def fingerprint(self) -> str:
        """SHA-256 of a tarball, or of the list of (path, size, mtime) of the files used."""
        if self.layout == "tar":
            return "sha256:" + _sha256_file(self.path)
        digest = hashlib.sha256()
        for file in self.files:
            stat = file.stat()
            digest.update(f"{file.relative_to(self.path)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        return f"files:{len(self.files)}:{digest.hexdigest()}"


def locate_cifar10(data_dir: str | os.PathLike | None, download: bool = False) -> Source:
    """Find CIFAR-10 in ``data_dir`` (a folder or a tarball; default ``$NAS_HARNESS_DATA_DIR``).

    Raises a one-line DataFileError naming the accepted layouts.
    """
    data_dir = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if data_dir is None:
        raise DataFileError(f"CIFAR-10 needs a data directory (--data-dir or ${DATA_DIR_ENV}); {CIFAR10_LAYOUTS}")
    path = Path(data_dir).expanduser()
    if path.is_file():
        if not tarfile.is_tarfile(path):
            raise DataFileError(f"{path} is neither a folder nor a tar archive; {CIFAR10_LAYOUTS}")
        return Source("cifar10", "tar", path.resolve())
    if path.is_dir():
        found = _find_cifar10_in_dir(path)
        if found is not None:
            return found
    if download:
        _download("cifar10", path)
        found = _find_cifar10_in_dir(path)
        if found is not None:
            return found
    what = "does not exist" if not path.exists() else "holds no CIFAR-10"
    raise DataFileError(f"{path} {what}; {CIFAR10_LAYOUTS}")


def _find_cifar10_in_dir(path: Path) -> Source | None:
    path = path.resolve()
    for candidate in (path / "cifar-10-batches-py", path):
        if any((candidate / name).exists() for name in CIFAR_PICKLES):
            missing = [name for name in CIFAR_PICKLES if not (candidate / name).is_file()]
            if missing:
                raise DataFileError(f"incomplete CIFAR-10 pickles in {candidate}: missing {', '.join(missing)}; "
                                    f"{CIFAR10_LAYOUTS}")
            names = CIFAR_PICKLES + (("batches.meta",) if (candidate / "batches.meta").is_file() else ())
            return Source("cifar10", "cifar-pickles", candidate, tuple(candidate / n for n in names))
    if (path / "train").is_dir() or (path / "test").is_dir():
        for split in ("train", "test"):
            if not (path / split).is_dir():
                raise DataFileError(f"incomplete CIFAR-10 ImageFolder in {path}: no {split}/ folder; "
                                    f"{CIFAR10_LAYOUTS}")
        files = tuple(
            file
            for split in ("train", "test")
            for class_dir in sorted(p for p in (path / split).iterdir() if p.is_dir())
            for file in sorted(class_dir.iterdir())
            if file.suffix.lower() in IMAGE_SUFFIXES and not file.name.startswith(".")
        )
        return Source("cifar10", "image-folder", path, files)
    for name in CIFAR_TARBALLS:
        if (path / name).is_file():
            return Source("cifar10", "tar", (path / name).resolve())
    return None


def locate_fashion_mnist(data_dir: str | os.PathLike | None, download: bool = False) -> Source:
    """Find the four Fashion-MNIST IDX files (raw or .gz); raises DataFileError naming the layouts.

    Without ``data_dir``: ``$NAS_HARNESS_DATA_DIR`` when set and holding them, else Debian's folder.
    """
    if data_dir is not None:
        bases = [Path(data_dir).expanduser()]
    else:
        bases = [Path(os.environ[DATA_DIR_ENV])] if os.environ.get(DATA_DIR_ENV) else []
        bases.append(FASHION_MNIST_DEFAULT_DIR)
    for attempt in range(2):
        for folder in (f for base in bases for f in (base, base / "FashionMNIST" / "raw")):
            files = [_idx_file(folder, name) for name in FASHION_MNIST_FILES]
            if all(files):
                return Source("fashion-mnist", "idx", folder.resolve(), tuple(f.resolve() for f in files))
            if any(files):
                missing = [n for n, f in zip(FASHION_MNIST_FILES, files, strict=True) if f is None]
                raise DataFileError(f"incomplete Fashion-MNIST in {folder}: missing {', '.join(missing)}[.gz]; "
                                    f"{FASHION_MNIST_LAYOUTS}")
        if attempt == 0 and download:
            _download("fashion-mnist", bases[0])
        else:
            break
    where = " nor ".join(str(b) for b in bases)
    raise DataFileError(f"no Fashion-MNIST IDX files in {where}; {FASHION_MNIST_LAYOUTS}")


def _idx_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(dataset: str, root: Path) -> None:
    """Let torchvision fetch a dataset into ``root`` (it needs torchvision and a network)."""
    try:
        import torchvision.datasets as tv_datasets
    except ImportError:
        raise UserError(
            f"downloading {dataset} needs torchvision, which is not installed here (pip install torchvision); "
            f"or fetch the data yourself and pass its folder as --data-dir"
        ) from None
    cls = tv_datasets.CIFAR10 if dataset == "cifar10" else tv_datasets.FashionMNIST
    try:
        root.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            cls(root=str(root), train=train, download=True)
    except Exception as exc:  # network, disk, checksum: torchvision raises many kinds
        message = " ".join(str(exc).split())
        raise DataFileError(f"could not download {dataset} into {root}: {type(exc).__name__}: {message}") from None


# ---------------------------------------------------------------------------------------------
# Readers


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR pickle holds: dicts, lists, strings and numpy arrays.

    ``_codecs.encode`` is how protocol-2 pickles written by Python 3 spell a bytes object.
    """

    _RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def read_cifar_pickle(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64."""
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
        images = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
        images = images.reshape(len(images), 3, 32, 32)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataFileError(f"{name} is not a CIFAR-10 batch file: {type(exc).__name__}: {exc}") from None
    if labels.shape != (len(images),):
        raise DataFileError(f"{name} has {len(images)} images but {labels.size} labels")
    return images, labels


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or raw, as a numpy array of its own shape and type."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFileError(f"cannot read {path}: {exc}") from None
    return parse_idx(data, str(path))


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataFileError(f"{name} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataFileError(f"{name} is truncated in its header")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise DataFileError(f"{name} holds {len(body)} data bytes where its header {shape} needs {expected}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _decode_images(blobs: list[bytes], names: list[str], out: np.ndarray | None = None) -> np.ndarray:
    """Decode same-sized images to ``(N, 3, H, W)`` uint8 RGB (Pillow; grey or RGBA become RGB)."""
    from PIL import Image, UnidentifiedImageError

    for i, (blob, name) in enumerate(zip(blobs, names, strict=True)):
        try:
            with Image.open(io.BytesIO(blob)) as image:
                pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataFileError(f"cannot decode image {name}: {exc}") from None
        if out is None:
            out = np.empty((len(blobs), 3, *pixels.shape[:2]), dtype=np.uint8)
        if pixels.shape[:2] != out.shape[2:]:
            raise DataFileError(f"image {name} is {pixels.shape[1]}x{pixels.shape[0]}, "
                                f"the others {out.shape[3]}x{out.shape[2]}")
        out[i] = pixels.transpose(2, 0, 1)
    return out if out is not None else np.empty((0, 3, 32, 32), dtype=np.uint8)


def _idle_cores(limit: int = 2) -> int:
    """Cores not busy with other work (1-minute load average, this process excluded), 1..limit.

    Measured on a shared 2-core machine: two processes decoded the 60,000 CIFAR JPEGs in
    3.5 s instead of 5.8 s while a core was free, and in 6.3 s instead of 6.0 s while
    other work kept both cores busy.
    """
    try:
        cores = len(os.sched_getaffinity(0))
        busy = max(os.getloadavg()[0] - 1.0, 0.0)
    except (AttributeError, OSError):
        return 1
    return max(1, min(limit, int(cores - busy + 0.5)))


#: What forked decoding workers read: (blobs, names, output array in shared memory).
_SHARED_DECODE: tuple[list[bytes], list[str], np.ndarray] | None = None


def _decode_range(bounds: tuple[int, int]) -> None:
    blobs, names, out = _SHARED_DECODE
    start, stop = bounds
    _decode_images(blobs[start:stop], names[start:stop], out[start:stop])


def decode_images(blobs: list[bytes], names: list[str], workers: int | None = None) -> np.ndarray:
    """``_decode_images`` split over ``workers`` forked processes when that pays (many images, fork).

    The workers inherit the encoded images and write into one shared-memory array, so
    nothing but two integers per chunk crosses a pipe. They ignore SIGINT and end on SIGTERM
    whatever handlers this process has (``harness.interrupts.forking_workers``): a Ctrl-C is
    the parent's, which terminates the pool, and a normal end closes it; neither prints a
    worker's traceback.
    """
    global _SHARED_DECODE
    workers = _idle_cores() if workers is None else max(1, workers)
    if workers == 1 or len(blobs) < _PARALLEL_MIN_IMAGES or "fork" not in multiprocessing.get_all_start_methods():
        return _decode_images(blobs, names)
    first = _decode_images(blobs[:1], names[:1])
    out = np.frombuffer(mmap.mmap(-1, len(blobs) * first[0].nbytes), dtype=np.uint8)
    out = out.reshape(len(blobs), *first.shape[1:])
    step = -(-len(blobs) // (4 * workers))
    _SHARED_DECODE = (blobs, names, out)
    pool = None
    try:
        with forking_workers():
            pool = multiprocessing.get_context("fork").Pool(workers, initializer=worker_ignores_stop_signals)
        pool.map(_decode_range, [(i, min(i + step, len(blobs))) for i in range(0, len(blobs), step)])
        pool.close()
        pool.join()
    finally:
        if pool is not None:
            pool.terminate()  # after an error or an interruption; a no-op once joined
        _SHARED_DECODE = None
    return out


def _image_folder_arrays(entries: Iterable[tuple[str, str, str, bytes]], where: str, workers: int | None
                         ) -> dict[str, np.ndarray]:
    """Arrays from ``(split, class, file name, bytes)`` entries of an ImageFolder layout."""
    by_split: dict[str, list[tuple[str, str, bytes]]] = {"train": [], "test": []}
    for split, cls, filename, blob in entries:
        by_split[split].append((cls, filename, blob))
    classes = sorted({cls for cls, _, _ in by_split["train"]})
    test_classes = sorted({cls for cls, _, _ in by_split["test"]})
    if not by_split["train"] or not by_split["test"]:
        empty = "train" if not by_split["train"] else "test"
        raise DataFileError(f"incomplete CIFAR-10 ImageFolder in {where}: no images under {empty}/; "
                            f"{CIFAR10_LAYOUTS}")
    if classes != test_classes:
        raise DataFileError(f"incomplete CIFAR-10 ImageFolder in {where}: train/ has classes {classes}, "
                            f"test/ has {test_classes}")
    if len(classes) != len(CIFAR10_CLASSES):
        raise DataFileError(f"{where} has {len(classes)} classes ({', '.join(classes)}); CIFAR-10 has 10")
    arrays: dict[str, np.ndarray] = {}
    for split, items in by_split.items():
        items.sort(key=lambda item: (item[0], item[1]))
        counts = {cls: sum(1 for c, _, _ in items if c == cls) for cls in classes}
        if len(set(counts.values())) != 1:
            raise DataFileError(f"incomplete CIFAR-10 ImageFolder in {where}: {split}/ holds unequal class "
                                f"counts {counts} (CIFAR-10 is balanced; was it fully unpacked?)")
        names = [f"{where}/{split}/{cls}/{filename}" for cls, filename, _ in items]
        arrays[f"{split}_x"] = decode_images([blob for _, _, blob in items], names, workers)
        arrays[f"{split}_y"] = np.array([classes.index(cls) for cls, _, _ in items], dtype=np.int64)
    arrays["classes"] = np.array(classes)
    return arrays


def _cifar_pickle_arrays(read: dict[str, bytes | None], where: str) -> dict[str, np.ndarray]:
    """Arrays from the contents of the pickle files (``batches.meta`` optional)."""
    train = [read_cifar_pickle(read[name], f"{where}/{name}") for name in CIFAR_PICKLES[:5]]
    test_x, test_y = read_cifar_pickle(read["test_batch"], f"{where}/test_batch")
    classes = CIFAR10_CLASSES
    if read.get("batches.meta"):
        try:
            meta = _NumpyOnlyUnpickler(io.BytesIO(read["batches.meta"]), encoding="latin1").load()
            classes = tuple(str(n) for n in meta["label_names"])
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError) as exc:
            raise DataFileError(f"{where}/batches.meta is unreadable: {exc}") from None
    train_y = np.concatenate([y for _, y in train])
    for labels in (train_y, test_y):
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataFileError(f"{where} has labels outside 0..{len(classes) - 1}")
    return {"train_x": np.concatenate([x for x, _ in train]), "train_y": train_y,
            "test_x": test_x, "test_y": test_y, "classes": np.array(classes)}


def read_source(source: Source, workers: int | None = None) -> dict[str, np.ndarray]:
    """Decode a source to ``train_x/train_y/test_x/test_y`` (NCHW uint8, int64) and ``classes``."""
    if source.layout == "cifar-pickles":
        files = {name: _read_bytes(source.path / name) for name in CIFAR_PICKLES}
        meta = source.path / "batches.meta"
        files["batches.meta"] = _read_bytes(meta) if meta.is_file() else None
        return _cifar_pickle_arrays(files, str(source.path))
    if source.layout == "image-folder":
        entries = ((f.parent.parent.name, f.parent.name, f.name, _read_bytes(f)) for f in source.files)
        return _image_folder_arrays(entries, str(source.path), workers)
    if source.layout == "tar":
        return _tar_arrays(source.path, workers)
    if source.layout == "idx":
        train_x, train_y, test_x, test_y = (read_idx(f) for f in source.files)
        for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataFileError(f"Fashion-MNIST {split} files in {source.path} disagree: images "
                                    f"{images.shape}, labels {labels.shape}")
            if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
                raise DataFileError(f"Fashion-MNIST {split} labels in {source.path} exceed 9")
        return {"train_x": train_x.astype(np.uint8)[:, None], "train_y": train_y.astype(np.int64),
                "test_x": test_x.astype(np.uint8)[:, None], "test_y": test_y.astype(np.int64),
                "classes": np.array(FASHION_MNIST_CLASSES)}
    raise ValueError(f"unknown layout {source.layout!r}")


def _tar_arrays(path: Path, workers: int | None) -> dict[str, np.ndarray]:
    """Read a tarball of the pickles or of an ImageFolder tree without unpacking it."""
    pickles: dict[str, bytes | None] = {}
    images: list[tuple[str, str, str, bytes]] = []
    try:
        raw = _decompressed(path.read_bytes())
        with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
            members = archive.getmembers()
    except (OSError, tarfile.TarError, EOFError, ValueError, lzma.LZMAError) as exc:
        raise DataFileError(f"cannot read the tar archive {path}: {exc}") from None
    for member in members:  # slicing the unpacked archive beats extractfile() 60,000 times
        if not member.isfile():
            continue
        parts = PurePosixPath(member.name).parts
        content = raw[member.offset_data:member.offset_data + member.size]
        if parts[-1] in CIFAR_PICKLES or parts[-1] == "batches.meta":
            pickles[parts[-1]] = content
        elif (len(parts) >= 3 and parts[-3] in ("train", "test")
              and PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES and not parts[-1].startswith(".")):
            images.append((parts[-3], parts[-2], parts[-1], content))
    if any(name in pickles for name in CIFAR_PICKLES):
        missing = [name for name in CIFAR_PICKLES if name not in pickles]
        if missing:
            raise DataFileError(f"incomplete CIFAR-10 pickles in {path}: missing {', '.join(missing)}; "
                                f"{CIFAR10_LAYOUTS}")
        return _cifar_pickle_arrays(pickles, str(path))
    if not images:
        raise DataFileError(f"the tar archive {path} holds no CIFAR-10; {CIFAR10_LAYOUTS}")
    return _image_folder_arrays(images, str(path), workers)


def _decompressed(data: bytes) -> bytes:
    """A tar archive's bytes, unpacked from gzip, bzip2 or xz when so compressed."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    return data


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"cannot read {path}: {exc}") from None


def digits_arrays() -> dict[str, np.ndarray]:
    """scikit-learn's digits as split arrays (8x8, one channel, 0-16 scaled to 0-255).

    A class-balanced sixth is the test set; ``train_index`` / ``valid_index`` are positions
    among all 1,797 images.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = digits.target.astype(np.int64)
    pool, test = balanced_split(labels, 1 / 6, np.random.default_rng(SPLIT_SEED))
    arrays = _split_and_stats({"train_x": images[pool], "train_y": labels[pool], "test_x": images[test],
                               "test_y": labels[test], "classes": np.array([str(d) for d in range(10)])})
    arrays["train_index"], arrays["valid_index"] = pool[arrays["train_index"]], pool[arrays["valid_index"]]
    return arrays


# ---------------------------------------------------------------------------------------------
# Split, statistics, cache


def balanced_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions ``(kept, taken)``: ``round(fraction * n_c)`` of each class ``c`` is taken at random."""
    labels = np.asarray(labels)
    kept, taken = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cut = int(round(fraction * len(members)))
        taken.append(members[:cut])
        kept.append(members[cut:])
    if not kept:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.sort(np.concatenate(kept)).astype(np.int64), np.sort(np.concatenate(taken)).astype(np.int64)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and standard deviation (0-1 scale) of uint8 NCHW images."""
    mean, std = np.zeros(images.shape[1]), np.zeros(images.shape[1])
    levels = np.arange(256, dtype=np.float64) / 255.0
    for c in range(images.shape[1]):
        counts = np.bincount(np.ascontiguousarray(images[:, c]).ravel(), minlength=256).astype(np.float64)
        total = max(counts.sum(), 1.0)
        mean[c] = counts @ levels / total
        std[c] = np.sqrt(max(counts @ (levels - mean[c]) ** 2 / total, 0.0))
    return mean, std


def _split_and_stats(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Halve the training images into train / valid (seeded, class-balanced); add mean / std."""
    images, labels = arrays.pop("train_x"), arrays.pop("train_y")
    train, valid = balanced_split(labels, 0.5, np.random.default_rng(SPLIT_SEED))
    mean, std = channel_stats(images)
    return {"train_x": images[train], "train_y": labels[train], "valid_x": images[valid],
            "valid_y": labels[valid], "train_index": train, "valid_index": valid, "mean": mean, "std": std,
            **arrays}


_CACHE_KEYS = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y", "train_index", "valid_index",
               "mean", "std", "classes")


def build_arrays(source: Source, workers: int | None = None) -> dict[str, np.ndarray]:
    """Everything the cache holds, decoded from the source."""
    return _split_and_stats(read_source(source, workers))


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    root = os.environ.get("NAS_HARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nas-harness"
    )
    return Path(root) / "datasets"


def cache_paths(source: Source, cache_root: Path) -> tuple[Path, Path]:
    """The ``.npz`` cache and its ``.json`` sidecar for a source."""
    key = hashlib.sha256(f"{source.layout}:{source.path}".encode()).hexdigest()[:16]
    stem = cache_root / f"{source.dataset}-{key}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _read_cache(npz: Path, sidecar: Path, fingerprint: str, verify: bool) -> tuple[dict | None, str]:
    """The cached arrays, or None and why not ('missing', 'stale', 'checksum', 'unreadable')."""
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None, "missing"
    if (meta.get("version"), meta.get("fingerprint"), meta.get("split_seed")) != (
        CACHE_VERSION, fingerprint, SPLIT_SEED
    ):
        return None, "stale"
    try:
        if verify and _sha256_file(npz) != meta.get("sha256"):
            return None, "checksum"
        with np.load(npz, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in _CACHE_KEYS}
    except (OSError, ValueError, KeyError, EOFError):
        return None, "unreadable"
    return arrays, "ok"


def _load_or_build(source: Source, cache_root: Path, workers: int | None, verify: bool) -> dict[str, np.ndarray]:
    fingerprint = source.fingerprint()
    npz, sidecar = cache_paths(source, cache_root)
    arrays, _ = _read_cache(npz, sidecar, fingerprint, verify)
    if arrays is not None:
        return arrays
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        writable = True
    except OSError:
        writable = False
    with locked(npz.with_suffix(".lock")) if writable else nullcontext():
        arrays, reason = _read_cache(npz, sidecar, fingerprint, verify)  # another process may have built it
        if arrays is not None:
            return arrays
        if reason == "checksum":
            warnings.warn(f"dataset cache {npz} does not match its recorded SHA-256; rebuilding it from {source.path}",
                          CacheWarning, stacklevel=3)
        arrays = build_arrays(source, workers)
        if writable:
            _write_cache(arrays, npz, sidecar, source, fingerprint)
    return arrays


def _write_cache(arrays: dict[str, np.ndarray], npz: Path, sidecar: Path, source: Source, fingerprint: str) -> None:
    tmp_npz = npz.with_name(f"{npz.name}.tmp{os.getpid()}")
    tmp_json = sidecar.with_name(f"{sidecar.name}.tmp{os.getpid()}")
    meta = {
        "format": "nas-harness dataset cache",
        "version": CACHE_VERSION,
        "dataset": source.dataset,
        "layout": source.layout,
        "source": str(source.path),
        "fingerprint": fingerprint,
        "split_seed": SPLIT_SEED,
        "arrays": {name: f"{arrays[name].dtype}{list(arrays[name].shape)}" for name in _CACHE_KEYS},
        "mean": arrays["mean"].tolist(),
        "std": arrays["std"].tolist(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        with open(tmp_npz, "wb") as handle:
            np.savez(handle, **{name: arrays[name] for name in _CACHE_KEYS})
        meta["sha256"] = _sha256_file(tmp_npz)
        tmp_json.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp_npz, npz)
        os.replace(tmp_json, sidecar)
    except OSError as exc:
        warnings.warn(f"could not write the dataset cache {npz}: {exc}", CacheWarning, stacklevel=4)
    finally:  # also on Ctrl-C: no half-written file is left behind (an .npz is only ever replaced whole)
        for tmp in (tmp_npz, tmp_json):
            tmp.unlink(missing_ok=True)


def _to_dataset(name: str, arrays: dict[str, np.ndarray], source: str) -> Dataset:
    tensor = {key: torch.from_numpy(np.ascontiguousarray(arrays[key]))
              for key in _CACHE_KEYS if key not in ("mean", "std", "classes")}
    for key in ("train_y", "valid_y", "test_y", "train_index", "valid_index"):
        tensor[key] = tensor[key].long()
    padding, flip = {"cifar10": (4, True), "fashion-mnist": (2, True), "digits": (1, False)}[name]
    return Dataset(
        name=name,
        classes=tuple(str(c) for c in arrays["classes"]),
        mean=tuple(float(v) for v in arrays["mean"]),
        std=tuple(float(v) for v in arrays["std"]),
        crop_padding=padding,
        flip=flip,
        source=source,
        **tensor,
    )
