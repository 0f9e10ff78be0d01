"""One Ray instance for the tests of this folder, started once: each test joins it instead of paying
Ray's start-up (several seconds); commands join it with --ray-address, as they would a cluster."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def ray_address() -> str:
    ray = pytest.importorskip("ray")
    from harness.execution.executors import ExecutionSettings, ray_init

    started = ray_init(ExecutionSettings("ray", workers=2))
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()
