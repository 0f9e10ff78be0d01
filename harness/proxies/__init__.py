"""Zero-cost proxies: architectures scored by their network at initialisation, without training.

``PROXIES`` holds every proxy by name (grad_norm, snip, grasp, fisher, zico, jacov, naswot,
synflow, params, flops); each is a function ``(network, batches, ProxyConfig) -> float``
whose higher values mean better architectures, and whose docstring cites its paper.
``ProxyScorer`` scores architectures with one of them, ``ProxiesScorer`` with several on one
network; ``harness.evaluation.rank.rank_proxies`` ranks them as supernets are ranked.
"""

from harness.proxies import activation, data_free, gradient  # noqa: F401  (they register the proxies)
from harness.proxies.registry import (
    PROXIES,
    Proxy,
    ProxyConfig,
    check_proxies,
    get_proxy,
    proxy_names,
    register_proxy,
)
from harness.proxies.scorer import ProxiesScorer, ProxyScorer, network_at_initialisation, proxy_batches

__all__ = ["PROXIES", "Proxy", "ProxyConfig", "ProxiesScorer", "ProxyScorer", "check_proxies", "get_proxy",
           "network_at_initialisation", "proxy_batches", "proxy_names", "register_proxy"]
