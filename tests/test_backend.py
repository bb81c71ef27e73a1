"""Backend layer: namespaces, device resolution, info(), the command line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mtlclassic
from mtlclassic import backend
from mtlclassic.backend import _device, _native


def test_namespace_and_to_numpy():
    x = np.arange(3)
    assert backend.get_namespace(x, None) is np
    assert backend.to_numpy([1, 2]).tolist() == [1, 2]
    assert not backend.is_cupy_array(x)


def test_resolve_device_validation():
    assert backend.resolve_device("auto", np.zeros(2)) == "cpu"
    assert backend.resolve_device("cpu") == "cpu"
    for bad in ["gpu", "CUDA", None, 0]:
        with pytest.raises(ValueError, match="device must be one of"):
            backend.resolve_device(bad)


def test_cuda_requested_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_device, "cuda_status", lambda: (False, "no driver here"))
    with pytest.raises(RuntimeError, match="device='cuda'.*no driver here"):
        backend.resolve_device("cuda")


def test_auto_follows_cupy_inputs():
    class FakeCupy:  # stands in for cupy.ndarray: only its module name matters
        pass

    FakeCupy.__module__ = "cupy._core.core"
    assert backend.is_cupy_array(FakeCupy())
    assert backend.resolve_device("auto", np.zeros(1), FakeCupy()) == "cuda"


def test_cuda_available_never_raises():
    assert isinstance(backend.cuda_available(), bool)


def test_effective_n_threads():
    assert backend.effective_n_threads(None) == 1
    assert backend.effective_n_threads(3) == 3
    assert backend.effective_n_threads(-1) >= 1
    for bad in [0, 1.5, "2", True]:
        with pytest.raises(ValueError, match="n_jobs"):
            backend.effective_n_threads(bad)


def test_info_contents():
    d = mtlclassic.info()
    assert d["mtlclassic"] == mtlclassic.__version__
    assert d["native"]["cpu_built"] is True
    assert d["packages"]["numpy"] == np.__version__
    assert isinstance(d["gpus"], list)
    if not backend.cuda_available():
        assert d["cupy_usable"] is False and d["cupy_reason"]
    json.dumps(d)  # serialisable
    text = backend.format_info(d)
    assert "native _cpu: built" in text


def test_cuda_module_builds_where_nvcc_exists():
    """Where a toolkit exists (and the build was not told to skip it) _cuda must import;
    on a machine without a driver it must report zero devices instead of failing."""
    import shutil

    if os.environ.get("MTLCLASSIC_CUDA", "") == "0" or not (
            shutil.which("nvcc") or os.environ.get("CUDA_HOME")):
        pytest.skip("no CUDA toolkit on this machine")
    assert _native._cuda is not None, _native.CUDA_IMPORT_ERROR
    n = _native._cuda.device_count()
    assert n >= 0
    if n == 0:
        assert _native._cuda.device_count_error()
    else:
        assert _native._cuda.device_properties(0)["name"]


@pytest.mark.parametrize("cmd", [["mtlclassic", "info"],
                                 [sys.executable, "-m", "mtlclassic", "info"]])
def test_info_command(cmd, tmp_path):
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "native _cpu: built" in res.stdout
    assert "GPU" in res.stdout


def test_info_command_json(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mtlclassic", "info", "--json"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["native"]["cpu_built"] is True


def test_command_without_subcommand_shows_help(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mtlclassic"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 2
    assert "info" in res.stdout


@pytest.mark.gpu
def test_info_reports_the_gpu():
    d = mtlclassic.info()
    assert d["gpus"] and d["gpus"][0]["memory_bytes"] > 0
    assert d["cupy_usable"]
    assert backend.resolve_device("cuda") == "cuda"


def test_shared_headers_compile_as_device_code(tmp_path):
    """The __host__ __device__ math headers must build under nvcc (CI has nvcc, no GPU)."""
    import shutil
    from pathlib import Path

    nvcc = shutil.which("nvcc")
    root = Path(__file__).resolve().parents[1]
    if nvcc is None or not (root / "csrc" / "include").is_dir():
        pytest.skip("nvcc or the source tree is not available")
    res = subprocess.run([nvcc, "-std=c++17", "--expt-relaxed-constexpr", "-arch=sm_90",
                          "-I", str(root / "csrc" / "include"), "-c",
                          str(root / "tests" / "cuda" / "headers_device.cu"), "-o",
                          str(tmp_path / "headers.o")], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
