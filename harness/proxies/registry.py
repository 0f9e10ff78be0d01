"""The zero-cost proxy registry and the settings every proxy is scored with.

A proxy is a function ``(network, batches, config) -> float`` of a network at
initialisation, a few labelled training batches and a ``ProxyConfig``; the float is
oriented so that HIGHER means a better architecture (proxies whose paper calls lower
better are negated, and say so). Proxies register with ``@register_proxy``, which refuses
a name registered twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import UnknownNameError, UserError

#: What a proxy receives as batches: (images, labels) pairs, images already normalised.
Batch = tuple[Any, Any]
#: The signature of a proxy: ``(network, batches, config) -> float``, higher is better.
ProxyFunction = Callable[[Any, list[Batch], "ProxyConfig"], float]

DTYPES = ("float32", "float64")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class ProxyConfig:
    """How proxies are scored: which network, at which initialisation, on which batches.

    Every architecture gets the NB201 network of ``C`` channels and ``N`` cells per stage,
    initialised (PyTorch's default initialisation, ``harness.oneshot.training.initialise_weights``)
    from ``torch.Generator().manual_seed(init_seed)``; the batches are the first ``batches``
    batches of ``batch_size`` images of ``split``, shuffled by
    ``torch.Generator().manual_seed(batch_seed)`` (random crop and flip too when ``augment``).
    Every architecture sees the same batches and the same seed. ``dtype`` is the arithmetic
    of the network and the images (synflow always works in float64, as its paper does).
    """

    C: int = 16
    N: int = 5
    batch_size: int = 64
    batches: int = 2
    init_seed: int = 0
    batch_seed: int = 0
    split: str = "train"
    augment: bool = False
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("C", "N", "batch_size", "batches"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UserError(f"proxy setting {name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("init_seed", "batch_seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise UserError(f"proxy setting {name} must be a non-negative integer, got {getattr(self, name)!r}")
        if self.split not in ("train", "valid", "test"):
            raise UserError(f"proxy split must be train, valid or test, got {self.split!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"proxy dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.device not in DEVICES:
            raise UserError(f"proxy device must be one of {', '.join(DEVICES)}, got {self.device!r}")


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: its function, the paper it follows, and what its value means."""

    name: str
    function: ProxyFunction
    paper: str
    meaning: str
    uses_data: bool = True
    min_batches: int = 1

    def __call__(self, network: Any, batches: list[Batch], config: ProxyConfig) -> float:
        if len(batches) < self.min_batches:
            raise UserError(f"proxy {self.name} needs at least {self.min_batches} batches, got {len(batches)}")
        return float(self.function(network, batches, config))


#: Every registered proxy by name, in order of registration.
PROXIES: dict[str, Proxy] = {}


def register_proxy(name: str, *, paper: str, meaning: str, uses_data: bool = True,
                   min_batches: int = 1) -> Callable[[ProxyFunction], ProxyFunction]:
    """Register the decorated function as proxy ``name``; a name registered twice is an error."""

    def register(function: ProxyFunction) -> ProxyFunction:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} is registered twice")
        PROXIES[name] = Proxy(name, function, paper, meaning, uses_data, min_batches)
        return function

    return register


def proxy_names() -> list[str]:
    """The registered proxies' names, in order of registration."""
    return list(PROXIES)


def get_proxy(name: str) -> Proxy:
    """The proxy called ``name``; an unknown name is a one-line error listing the accepted ones."""
    try:
        return PROXIES[name]
    except KeyError:
        raise UnknownNameError(f"unknown proxy {name!r}; accepted: {', '.join(PROXIES)}") from None


def check_proxies(names: list[str], config: ProxyConfig) -> list[Proxy]:
    """The proxies ``names`` (each once, in order), refused at once when unknown or when
    ``config`` gives fewer batches than one of them needs."""
    proxies = [get_proxy(name) for name in dict.fromkeys(names)]
    for proxy in proxies:
        if config.batches < proxy.min_batches:
            raise UserError(f"proxy {proxy.name} needs at least {proxy.min_batches} batches; "
                            f"got --proxy-batches {config.batches}")
    return proxies
