"""Real-time core: the 100 ms S14-S15 tick and its clock, compiled (`_tick`, `_clock`) or as
the reference twin (`twin`, `twin_clock`), with the same names (API: rtcore/README.md).

Set DISCHARGE_EDGE_FORCE_TWIN=1 to run the pure-Python twin even where the extension is built.
`rtcore` imports the standard library and numpy only; it never imports `edge`.
Tests: tests/rtcore/.
"""

import os
import warnings

from rtcore.spec import (
    DIAGNOSTICS,
    EXTERNAL_FAULTS,
    LATCHING,
    Config,
    Diagnostic,
    Fixture,
    Flag,
    RealtimeGrant,
    Setpoints,
    STATION_FAULTS,
    Severity,
    StationLimits,
    Status,
    snapshot,
)

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

Kernel = impl.Kernel
Periodic = impl.Periodic
monotonic_ns = impl.monotonic_ns
sleep_until_ns = impl.sleep_until_ns
request_realtime = impl.request_realtime

__all__ = [
    "COMPILED", "DIAGNOSTICS", "EXTERNAL_FAULTS", "LATCHING", "STATION_FAULTS", "Config", "Diagnostic",
    "Fixture", "Flag", "Kernel", "Periodic", "RealtimeGrant", "Setpoints", "Severity", "StationLimits",
    "Status", "impl", "monotonic_ns", "request_realtime", "sleep_until_ns", "snapshot",
]
