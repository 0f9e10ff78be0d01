"""Fixtures shared by the test modules (comparison helpers live in ``harness.testing``)."""

import pytest

from harness.oneshot.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    """The small real image dataset the training tests run on (scikit-learn's 8x8 digits)."""
    return load_dataset("digits")
