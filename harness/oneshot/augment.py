"""Training batches from in-memory uint8 NCHW tensors: shuffle, random crop and flip, normalise.

Every step works on a whole batch with a handful of torch ops, never a per-image Python
loop, so the data path stays far faster than a network trains (see bench/bench_data.py).
Random numbers come only from the caller's CPU ``torch.Generator``, in a fixed order:
per epoch one permutation, then per batch the crop offsets ``(n, 2)`` (when padding > 0)
and the flips ``(n,)`` (when flip is on). The same generator state therefore gives the
same batches on any device and in any process.

The crop follows torchvision's ``RandomCrop(size, padding)`` then ``RandomHorizontalFlip()``:
each image is zero-padded by ``padding`` pixels on every side, a window of its original
size is cut at a uniformly random offset, and the window is mirrored left-right with
probability 1/2.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


def to_device(index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor of indices on ``device``; to a GPU from pinned memory without waiting for it."""
    if index.device == device:
        return index
    if device.type == "cuda":
        return index.pin_memory().to(device, non_blocking=True)
    return index.to(device)


def crop_and_flip(x: torch.Tensor, offsets: torch.Tensor | np.ndarray, flips: torch.Tensor | np.ndarray,
                  padding: int) -> torch.Tensor:
    """Crop every image of ``x`` (N, C, H, W) at its ``offsets[i] = (dy, dx)`` in the zero-padded
    image (``0 <= dy, dx <= 2 * padding``), then mirror it left-right where ``flips[i]`` is true.

    Vectorised: the flipped copies sit beside the originals in one padded buffer, and every
    output row is a window of that buffer picked by a single ``index_select``.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    offsets = np.asarray(offsets.cpu() if isinstance(offsets, torch.Tensor) else offsets, dtype=np.int64)
    flips = np.asarray(flips.cpu() if isinstance(flips, torch.Tensor) else flips).astype(bool)
    n, c, h, w = x.shape
    if offsets.shape != (n, 2) or flips.shape != (n,):
        raise ValueError(f"need offsets of shape ({n}, 2) and flips of shape ({n},)")
    if n and (offsets.min() < 0 or offsets.max() > 2 * padding):
        raise ValueError(f"crop offsets must lie in 0..{2 * padding}")
    if n == 0:
        return x.clone()
    p, height, width = padding, h + 2 * padding, w + 2 * padding
    any_flip = bool(flips.any())
    padded = x.new_zeros(((2 if any_flip else 1) * n, c, height, width))
    padded[:n, :, p:p + h, p:p + w] = x
    if any_flip:
        padded[n:, :, p:p + h, p:p + w] = x.flip(3)
    # Cropping the mirrored padded image at dx' = 2p - dx equals mirroring the crop at dx.
    image = np.arange(n) + n * flips
    dx = np.where(flips, 2 * p - offsets[:, 1], offsets[:, 1])
    first = image * (c * height * width) + offsets[:, 0] * width + dx
    rows = (np.arange(c)[:, None] * height + np.arange(h)[None, :]) * width
    starts = to_device(torch.from_numpy((first[:, None, None] + rows[None]).reshape(-1)), x.device)
    flat = padded.view(-1)
    windows = flat.as_strided((flat.numel() - w + 1, w), (1, 1))
    return windows.index_select(0, starts).view(n, c, h, w)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4,
                     flip: bool = True) -> torch.Tensor:
    """``crop_and_flip`` with offsets uniform in ``0..2*padding`` and fair coin flips from ``generator``."""
    if padding == 0 and not flip:
        return x
    n = x.shape[0]
    offsets = (torch.randint(0, 2 * padding + 1, (n, 2), generator=generator) if padding > 0
               else torch.zeros((n, 2), dtype=torch.int64))
    flips = torch.randint(0, 2, (n,), generator=generator) if flip else torch.zeros(n, dtype=torch.int64)
    return crop_and_flip(x, offsets, flips, padding)


def normalize(x: torch.Tensor, mean: Sequence[float] | None = None, std: Sequence[float] | None = None, *,
              channels_last: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images to ``(x / 255 - mean) / std`` per channel (just ``x / 255`` without mean / std)."""
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images (0-255), got {x.dtype}")
    out = x.to(dtype)
    if channels_last:
        out = out.contiguous(memory_format=torch.channels_last)
    if mean is None and std is None:
        return out.mul_(1.0 / 255.0)
    c = x.shape[1]
    mean_t = torch.as_tensor(mean if mean is not None else [0.0] * c, dtype=torch.float64)
    std_t = torch.as_tensor(std if std is not None else [1.0] * c, dtype=torch.float64)
    if mean_t.shape != (c,) or std_t.shape != (c,):
        raise ValueError(f"mean and std need {c} values, one per channel")
    scale = (1.0 / (255.0 * std_t)).to(dtype=dtype, device=x.device).view(1, c, 1, 1)
    shift = (-mean_t / std_t).to(dtype=dtype, device=x.device).view(1, c, 1, 1)
    return out.mul_(scale).add_(shift)


def num_batches(n: int, batch_size: int, drop_last: bool = True) -> int:
    """How many batches ``iterate_batches`` yields for ``n`` images."""
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None,
    augment: bool = True,
    drop_last: bool = True,
    *,
    shuffle: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    padding: int = 4,
    flip: bool = True,
    channels_last: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of ``(images, labels)``: float images normalised by ``mean`` / ``std``, int64 labels.

    ``x`` is uint8 (N, C, H, W) on any device, ``y`` its labels. Shuffles (``shuffle``) and
    augments (``augment``: random crop with ``padding``, horizontal ``flip``) with ``generator``,
    a CPU ``torch.Generator``, which may be None only when doing neither (evaluation).
    ``device`` moves each uint8 batch there before it becomes float.
    """
    if x.ndim != 4 or x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images (N, C, H, W), got {x.dtype} of shape {tuple(x.shape)}")
    if len(y) != len(x):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if (shuffle or augment) and not isinstance(generator, torch.Generator):
        raise TypeError("shuffling or augmenting needs an explicit torch.Generator (e.g. "
                        "torch.Generator().manual_seed(seed))")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError("the generator must be a CPU torch.Generator (its draws are device-independent)")
    n = len(x)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    # Moved once per epoch: with images resident on a GPU (Dataset.to), a batch is cut there.
    order_x = to_device(order, x.device)
    order_y = order_x if y.device == x.device else to_device(order, y.device)
    for start in range(0, num_batches(n, batch_size, drop_last) * batch_size, batch_size):
        images = x.index_select(0, order_x[start:start + batch_size])
        labels = y.index_select(0, order_y[start:start + batch_size]).long()
        if augment:
            images = random_crop_flip(images, generator, padding=padding, flip=flip)
        if device is not None:
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        yield normalize(images, mean, std, channels_last=channels_last, dtype=dtype), labels
