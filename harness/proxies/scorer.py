"""Score architectures with a proxy: the same batches and the same initialisation seed for every one.

``ProxyScorer`` draws the batches once (``proxy_batches``); for each architecture it builds
the NB201 network, initialises it (``network_at_initialisation``) and calls the proxy,
timing both, so that the seconds it reports are the whole cost of one architecture.
"""

from __future__ import annotations

import math
import time

import torch

from harness.errors import RunFailed, UserError
from harness.oneshot.data import Dataset
from harness.oneshot.network import TinyNetwork
from harness.oneshot.training import initialise_weights
from harness.proxies.registry import Batch, ProxyConfig, get_proxy
from harness.space import Architecture


def _dtype(config: ProxyConfig) -> torch.dtype:
    return torch.float64 if config.dtype == "float64" else torch.float32


def proxy_batches(dataset: Dataset, config: ProxyConfig) -> list[Batch]:
    """The first ``config.batches`` batches of ``config.split``, shuffled by ``config.batch_seed``.

    Images are normalised by the dataset's mean and std (and augmented when ``config.augment``);
    a split too small for them is a UserError.
    """
    _, labels = dataset.split(config.split)
    needed = config.batches * config.batch_size
    if needed > len(labels):
        raise UserError(f"{config.batches} proxy batches of {config.batch_size} need {needed} images; the "
                        f"{config.split} split of {dataset.name} has {len(labels)}")
    generator = torch.Generator().manual_seed(config.batch_seed)
    stream = dataset.batches(config.split, config.batch_size, generator, augment=config.augment,
                             dtype=_dtype(config), device=config.device)
    return [next(stream) for _ in range(config.batches)]


def network_at_initialisation(arch: Architecture, dataset: Dataset, config: ProxyConfig) -> TinyNetwork:
    """The NB201 network of ``arch`` (``config.C``, ``config.N``), initialised from ``config.init_seed``."""
    network = TinyNetwork(arch, C=config.C, N=config.N, num_classes=dataset.num_classes,
                          in_channels=dataset.image_shape[0])
    initialise_weights(network, torch.Generator().manual_seed(config.init_seed))
    return network.to(device=config.device, dtype=_dtype(config)).train()


class ProxyScorer:
    """One proxy's score of any architecture, on batches drawn once from ``dataset``."""

    def __init__(self, name: str, dataset: Dataset, config: ProxyConfig,
                 batches: list[Batch] | None = None) -> None:
        self.proxy, self.dataset, self.config = get_proxy(name), dataset, config
        if config.batches < self.proxy.min_batches:
            raise UserError(f"proxy {name} needs at least {self.proxy.min_batches} batches, got {config.batches}")
        self.batches = batches if batches is not None else proxy_batches(dataset, config)

    def score(self, arch: Architecture) -> tuple[float, float]:
        """(score, seconds): the proxy's value for ``arch`` and what building, initialising and scoring cost."""
        start = time.perf_counter()
        value = self.proxy(network_at_initialisation(arch, self.dataset, self.config), self.batches, self.config)
        if self.config.device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if not math.isfinite(value):
            raise RunFailed(f"proxy {self.proxy.name} gave {value} for {arch.to_string()}; a ranking needs a finite "
                            f"score for every architecture")
        return value, seconds
