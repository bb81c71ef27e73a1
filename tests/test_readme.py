"""Every command and code block of the README runs: the `mtlclassic ...` lines of its bash
blocks and each python block, in a fresh process (install and test commands excepted)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang):
    if not README.is_file():
        return []
    return re.findall(r"```" + lang + r"\n(.*?)```", README.read_text(), flags=re.S)


COMMANDS = [line.split("#")[0].strip() for block in _blocks("bash") for line in block.splitlines()
            if line.strip().startswith("mtlclassic ")]
PYTHON = _blocks("python")


def _env():
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    return env


def test_readme_has_the_two_commands():
    assert "mtlclassic demo" in COMMANDS
    assert any(b.strip() == "pytest" for b in _blocks("bash"))
    assert any("pip install" in b for b in _blocks("bash"))


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, tmp_path):
    args = shlex.split(command)
    res = subprocess.run([sys.executable, "-m", "mtlclassic"] + args[1:], capture_output=True,
                         text=True, cwd=tmp_path, env=_env(), timeout=900)
    assert res.returncode == 0, res.stderr
    if args[1] == "demo":
        assert (tmp_path / "mtlclassic-demo" / "report.json").is_file()


def _has_mtfl():
    from mtlclassic.datasets import data_home

    return any((d / "mtfl" / "MTFL.zip").is_file() or (d / "mtfl" / "MTFL").is_dir()
               for d in data_home(None))


def _marks(block):
    if "import cupy" in block:
        return [pytest.mark.gpu]
    if "load_mtfl(" in block:
        return [pytest.mark.skipif(not _has_mtfl(), reason="the MTFL data are not found")]
    return []


@pytest.mark.parametrize("index", [pytest.param(i, marks=_marks(block))
                                   for i, block in enumerate(PYTHON)])
def test_readme_python_block_runs(index, tmp_path):
    """Blocks that import CuPy are GPU tests (skipped without a GPU); blocks that load MTFL
    are skipped where its data are not found (a user's checkout has no shared data)."""
    res = subprocess.run([sys.executable, "-c", PYTHON[index]], capture_output=True, text=True,
                         cwd=tmp_path, env=_env(), timeout=900)
    assert res.returncode == 0, res.stderr
