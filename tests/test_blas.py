"""The BLAS kernel choice: only kernels the CPU flags support, a user's setting kept, and the
module that makes the choice loads no NumPy (it must run before NumPy does)."""

import os
import subprocess
import sys

from minirnnsearch import blas

HASWELL_CPU = {"sse4_2", "avx", "avx2", "fma", "bmi2"}  # e.g. this AMD EPYC: no AVX-512
AVX512_CPU = HASWELL_CPU | {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def test_best_kernel_needs_every_flag_it_uses():
    assert blas.best_kernel(AVX512_CPU) == "SkylakeX"
    assert blas.best_kernel(HASWELL_CPU) == "Haswell"
    assert blas.best_kernel(AVX512_CPU - {"avx512bw"}) == "Haswell"   # partial AVX-512
    assert blas.best_kernel({"avx", "sse4_2"}) == "Sandybridge"
    assert blas.best_kernel({"sse2", "sse4_2"}) is None                  # left to OpenBLAS
    assert blas.best_kernel(set()) is None                                # no /proc/cpuinfo


def test_choice_sets_the_best_supported_kernel_when_unset():
    env = {"PATH": "/bin"}
    choice = blas.choose_kernel(env, AVX512_CPU)
    assert env["OPENBLAS_CORETYPE"] == "SkylakeX" == choice.kernel
    env = {}
    assert blas.choose_kernel(env, HASWELL_CPU).kernel == "Haswell"
    assert env == {"OPENBLAS_CORETYPE": "Haswell"}


def test_choice_keeps_a_users_setting_even_an_empty_one():
    for value in ("Prescott", "SkylakeX", ""):
        env = {"OPENBLAS_CORETYPE": value, "OPENBLAS_L2_SIZE": "1048576"}
        choice = blas.choose_kernel(env, AVX512_CPU)
        assert env == {"OPENBLAS_CORETYPE": value, "OPENBLAS_L2_SIZE": "1048576"}
        assert "kept" in choice.reason


def test_choice_sets_nothing_without_a_known_kernel_or_after_numpy():
    env = {}
    assert blas.choose_kernel(env, {"sse2"}).kernel is None and env == {}
    choice = blas.choose_kernel(env, AVX512_CPU, numpy_loaded=True)
    assert choice.kernel is None and env == {} and "NumPy" in choice.reason


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx avx2 fma\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert blas.cpu_flags(info) == {"fpu", "avx", "avx2", "fma"}
    assert blas.cpu_flags(tmp_path / "missing") == frozenset()


def test_importing_the_chooser_loads_no_numpy():
    code = "import sys; from minirnnsearch import blas; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_describe_names_the_loaded_library_and_kernel():
    line = blas.describe()
    info = blas.loaded()
    assert line.startswith("BLAS: ")
    assert info["library"] is None or f"kernel {info['kernel']}" in line


def test_importing_the_package_chooses_the_kernel_and_loads_the_api_on_first_use():
    code = ("import sys, minirnnsearch; from minirnnsearch import blas; "
            "print('numpy' in sys.modules, blas._choice.reason); minirnnsearch.Settings; "
            "print('numpy' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != blas.VARIABLE}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    before, after = out.stdout.splitlines()
    assert before.startswith("False ") and "NumPy was loaded first" not in before
    assert after == "True"
