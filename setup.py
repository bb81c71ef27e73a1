"""Build script for mtlclassic's native modules.

* ``mtlclassic._cpu``  -- always built: C++17, -O3, std::thread, pybind11.
* ``mtlclassic._cuda`` -- built when a CUDA toolkit is found.  ``.cu`` sources go to
  nvcc, ``.cpp`` sources (the pybind11 bindings) to the host C++ compiler, and the
  CUDA runtime is linked statically so the module imports on machines without a driver.

Environment:
  MTLCLASSIC_CUDA=0        never build _cuda;  =1: a missing toolkit is an error.
  MTLCLASSIC_CUDA_ARCHS    e.g. "80;90" (default): SASS for each, PTX for the last.
  CUDA_HOME / CUDA_PATH    toolkit root; otherwise `nvcc --dryrun` (TOP=) is asked,
                           then /usr/local/cuda.
  MTLCLASSIC_SANITIZE      e.g. "address,undefined": build _cpu with those GCC/Clang
                           sanitizers (-fsanitize=..., -O1 -g, no recovery: the first
                           report aborts). For checking only, never for a release; _cuda is
                           built without them. Build and run the CPU tests under it with
                             MTLCLASSIC_CUDA=0 MTLCLASSIC_SANITIZE=address,undefined \
                               python setup.py build_ext --inplace --force
                             LD_PRELOAD="$(gcc -print-file-name=libasan.so) \
                               $(gcc -print-file-name=libstdc++.so)" \
                               ASAN_OPTIONS=detect_leaks=0 python -m pytest tests \
                               --deselect tests/test_backend.py::test_shared_headers_compile_as_device_code
                           (the interpreter is not instrumented, so the ASan runtime must be
                           preloaded, with libstdc++ so that ASan finds __cxa_throw for C++
                           exceptions; CPython's own allocations would read as leaks; nvcc,
                           which one test runs, crashes with the runtime preloaded);
                           rebuild without it afterwards (--force: flags alone do not
                           trigger a rebuild).
"""

import glob
import os
import re
import shutil
import subprocess

import pybind11
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name):
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise SystemExit(f"{name}={value!r}: expected 0, 1 or auto")


def _has_nvcc(home):
    return bool(home) and os.path.isfile(os.path.join(home, "bin", "nvcc"))


def find_cuda_home():
    """Toolkit root: CUDA_HOME/CUDA_PATH, then nvcc's own TOP=, then /usr/local/cuda.

    ``dirname(dirname(which nvcc))`` is not used: nvcc on PATH may be a wrapper script
    (it is /usr/local/bin/nvcc on our build machines), which would give /usr/local.
    """
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if _has_nvcc(os.environ.get(var)):
            return os.path.realpath(os.environ[var])
    nvcc = shutil.which("nvcc")
    if nvcc:
        try:
            res = subprocess.run([nvcc, "--dryrun", "-x", "cu", "-E", os.devnull],
                                 capture_output=True, text=True, timeout=120)
            match = re.search(r"^#\$ TOP=(.+)$", res.stdout + res.stderr, re.M)
            if match and _has_nvcc(match.group(1).strip()):
                return os.path.realpath(match.group(1).strip())
        except (OSError, subprocess.SubprocessError):
            pass
    for cand in ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True):
        if _has_nvcc(cand):
            return os.path.realpath(cand)
    return None


def cuda_arch_flags():
    archs = os.environ.get("MTLCLASSIC_CUDA_ARCHS", "80;90")
    archs = [a.strip() for a in re.split(r"[;, ]+", archs) if a.strip()]
    if not archs or not all(re.fullmatch(r"\d+[a-z]?", a) for a in archs):
        raise SystemExit(f"MTLCLASSIC_CUDA_ARCHS={archs!r}: expected e.g. '80;90'")
    flags = []
    for a in archs:
        flags += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    flags += ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]
    return flags, archs


INCLUDES = [os.path.join("csrc", "include"), pybind11.get_include()]
CXX_FLAGS = ["-O3", "-std=c++17", "-fvisibility=hidden", "-ffp-contract=off", "-pthread"]
SANITIZERS = ("address", "undefined", "leak", "thread")


def sanitizer_flags():
    """(compile, link) flags for MTLCLASSIC_SANITIZE, e.g. "address,undefined"."""
    value = os.environ.get("MTLCLASSIC_SANITIZE", "").strip()
    if value in ("", "0"):
        return [], []
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in names if v not in SANITIZERS]
    if not names or bad:
        raise SystemExit(f"MTLCLASSIC_SANITIZE={value!r}: expected a comma-separated list of "
                         f"{SANITIZERS}")
    flag = "-fsanitize=" + ",".join(names)
    print(f"mtlclassic: building _cpu with {flag}")
    return ([flag, "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"],
            [flag])


class BuildExt(build_ext):
    """build_ext that sends ``.cu`` files to nvcc without touching shared compiler state
    (so extensions can build in parallel threads)."""

    nvcc = None
    nvcc_flags = []

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        if ".cu" not in self.compiler.src_extensions:
            self.compiler.src_extensions.append(".cu")
        original = self.compiler._compile
        builder = self

        def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if src.endswith(".cu"):
                cmd = [builder.nvcc, *pp_opts, "-c", src, "-o", obj, *builder.nvcc_flags]
                (getattr(builder.compiler, "call", None) or builder.compiler.spawn)(cmd)
            else:
                original(obj, src, ext, cc_args, extra_postargs, pp_opts)

        self.compiler._compile = _compile
        super().build_extensions()
        self._drop_stale_cuda()

    def _drop_stale_cuda(self):
        """Without _cuda in this build (MTLCLASSIC_CUDA=0, no toolkit), remove a _cuda
        module left by an earlier build in build/ or in place, so that it is neither packed
        into the wheel nor imported."""
        if any(ext.name == "mtlclassic._cuda" for ext in self.extensions):
            return
        dirs = [os.path.join(self.build_lib, "mtlclassic")]
        if self.inplace:
            dirs.append(os.path.join(ROOT, "mtlclassic"))
        for d in dirs:
            for stale in glob.glob(os.path.join(d, "_cuda*.so")) + glob.glob(
                    os.path.join(d, "_cuda*.pyd")):
                print(f"mtlclassic: removing stale {stale} (this build has no _cuda)")
                os.remove(stale)


def extensions():
    san_compile, san_link = sanitizer_flags()
    exts = [
        Extension(
            "mtlclassic._cpu",
            sources=sorted(glob.glob(os.path.join("csrc", "cpu", "*.cpp"))),
            include_dirs=INCLUDES,
            extra_compile_args=CXX_FLAGS + san_compile,
            extra_link_args=["-pthread"] + san_link,
            language="c++",
        )
    ]
    want = _env_flag("MTLCLASSIC_CUDA")
    if want is False:
        return exts
    home = find_cuda_home()
    if home is None:
        if want:
            raise SystemExit("MTLCLASSIC_CUDA=1 but no CUDA toolkit was found "
                             "(set CUDA_HOME to the directory holding bin/nvcc)")
        print("mtlclassic: no CUDA toolkit found; building without _cuda")
        return exts
    arch_flags, archs = cuda_arch_flags()
    BuildExt.nvcc = os.path.join(home, "bin", "nvcc")
    BuildExt.nvcc_flags = [
        "-O3", "-std=c++17", "--fmad=false", "-Xcompiler", "-fPIC",
        "-Xcompiler", "-fvisibility=hidden", "--expt-relaxed-constexpr", *arch_flags,
    ]
    lib64 = os.path.join(home, "lib64")
    if not os.path.isdir(lib64):
        lib64 = os.path.join(home, "lib")
    exts.append(
        Extension(
            "mtlclassic._cuda",
            sources=sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
            + sorted(glob.glob(os.path.join("csrc", "cuda", "*.cpp"))),
            include_dirs=INCLUDES + [os.path.join(home, "include")],
            define_macros=[("MTL_CUDA_ARCHS", '"' + ";".join(archs) + '"')],
            extra_compile_args=CXX_FLAGS,
            library_dirs=[lib64],
            libraries=["cudart_static", "rt", "dl", "pthread"],
            extra_link_args=["-pthread"],
            language="c++",
        )
    )
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
