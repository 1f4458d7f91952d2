"""Build of the compiled real-time core (`rtcore._tick`); all other metadata is in pyproject.toml.

`make build` runs `python setup.py build_ext --inplace`, so a checkout imports the extensions
(`rtcore._tick`, the S14-S15 kernel; `rtcore._clock`, the real-time clock)
from the source tree. An unbuilt checkout still imports `rtcore`: it falls back to the reference
twin and says so (see rtcore/__init__.py).
"""

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# -ffp-contract=off: no fused multiply-add, so the kernel rounds like the NumPy twin.
COMPILE_ARGS = ["-O3", "-fno-fast-math", "-ffp-contract=off"]

extensions = [
    Extension(
        "rtcore._tick",
        sources=["rtcore/_tick.pyx"],
        include_dirs=[numpy.get_include()],
        extra_compile_args=COMPILE_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "rtcore._clock",
        sources=["rtcore/_clock.pyx"],
        extra_compile_args=COMPILE_ARGS,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
