"""Shared test configuration: the ``gpu`` marker and ``--require-gpu``.

Tests marked ``gpu`` need CuPy, a CUDA GPU and the ``_cuda`` module.  Without them they
are skipped; with ``--require-gpu`` (or MTLCLASSIC_REQUIRE_GPU=1) the skip becomes a
failure, so a broken GPU install cannot pass silently on the GPU machine.
"""

import os
import zlib

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--require-gpu", action="store_true", default=False,
                     help="fail (instead of skip) GPU tests when no usable GPU is found")


def _gpu_reason():
    from mtlclassic.backend import _native, cuda_status

    ok, reason = cuda_status()
    if not ok:
        return reason
    if _native._cuda is None:
        return f"mtlclassic._cuda was not built ({_native.CUDA_IMPORT_ERROR})"
    if _native._cuda.device_count() < 1:
        return "mtlclassic._cuda sees no device: " + _native._cuda.device_count_error()
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is None:
        return
    reason = _gpu_reason()
    if reason is None:
        return
    require = item.config.getoption("--require-gpu") or os.environ.get(
        "MTLCLASSIC_REQUIRE_GPU", "") not in ("", "0")
    if require:
        pytest.fail(f"GPU required (--require-gpu) but unusable: {reason}", pytrace=False)
    pytest.skip(f"no usable GPU: {reason}")


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: fresh data per test, reproducible."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)
