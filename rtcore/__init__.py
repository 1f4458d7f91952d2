"""Real-time core: the 100 ms S14-S15 tick, compiled (`_tick`) or as the reference twin (`twin`).

Set DISCHARGE_EDGE_FORCE_TWIN=1 to run the pure-Python twin even where the extension is built.
`rtcore` imports the standard library and numpy only; it never imports `edge`.
Tests: tests/rtcore/.
"""

import os
import warnings

FORCE_TWIN_ENV = "DISCHARGE_EDGE_FORCE_TWIN"

if os.environ.get(FORCE_TWIN_ENV, "") not in ("", "0"):
    from rtcore import twin as impl
    COMPILED = False
else:
    try:
        from rtcore import _tick as impl
        COMPILED = True
    except ImportError as exc:  # an unbuilt checkout
        warnings.warn(
            f"rtcore: compiled tick not built ({exc}); using the reference twin. "
            "Run `make build` to compile it.",
            RuntimeWarning,
            stacklevel=2,
        )
        from rtcore import twin as impl
        COMPILED = False

clamp = impl.clamp
