"""The glibc malloc settings the training commands apply."""

from __future__ import annotations

import ctypes
import sys

import pytest

from harness.oneshot.allocator import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_accepts_the_settings():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        pytest.skip("no glibc here")
    if not hasattr(libc, "mallopt"):
        pytest.skip("this libc has no mallopt")
    assert keep_freed_memory() is True


def test_without_glibc_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
