"""Score architectures with a proxy: the same batches and the same initialisation seed for every one.

``ProxyScorer`` draws the batches once (``proxy_batches``); for each architecture it builds
the NB201 network, initialises it (``network_at_initialisation``) and calls the proxy,
timing both, so that the seconds it reports are the whole cost of one architecture.
``ProxiesScorer`` scores several proxies on one network per architecture, so that the
proxies sharing a pass (``harness.proxies.weights.batch_pass``) make it once.
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
        return self.checked(arch, value), time.perf_counter() - start

    def checked(self, arch: Architecture, value: float) -> float:
        """``value``, or RunFailed when it is not finite (a ranking needs a score for every architecture)."""
        if not math.isfinite(value):
            raise RunFailed(f"proxy {self.proxy.name} gave {value} for {arch.to_string()}; a ranking needs a finite "
                            f"score for every architecture")
        return value


class ProxiesScorer:
    """Several proxies' scores of any architecture, all on one network built and initialised once.

    Each proxy's value is the one ``ProxyScorer`` gives. Its seconds are building and
    initialising the network plus its own call; a pass it shares with a proxy scored before it
    (``batch_pass``) was paid for by that proxy, so the first of them carries the pass.
    """

    def __init__(self, names: list[str], dataset: Dataset, config: ProxyConfig,
                 batches: list[Batch] | None = None) -> None:
        self.batches = batches if batches is not None else proxy_batches(dataset, config)  # drawn once for all
        self.scorers = {name: ProxyScorer(name, dataset, config, self.batches) for name in names}
        self.dataset, self.config = dataset, config

    def score(self, arch: Architecture, names: list[str] | None = None) -> dict[str, tuple[float, float]]:
        """{name: (score, seconds)} of ``names`` (default: all) for ``arch``, in the order given."""
        start = time.perf_counter()
        network = network_at_initialisation(arch, self.dataset, self.config)
        built = time.perf_counter() - start
        out = {}
        for name in names if names is not None else list(self.scorers):
            scorer = self.scorers[name]
            start = time.perf_counter()
            value = scorer.proxy(network, self.batches, self.config)
            if self.config.device == "cuda":
                torch.cuda.synchronize()
            out[name] = (scorer.checked(arch, value), built + time.perf_counter() - start)
        return out
