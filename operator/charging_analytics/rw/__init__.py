"""The RisingWave boundary (see :mod:`charging_analytics.rw.client`)."""

from charging_analytics.rw.client import (
    ClientOptions,
    Endpoint,
    RisingWaveClient,
    RisingWaveError,
    RisingWaveStatementError,
    RisingWaveStatementTimeout,
    RisingWaveUnavailable,
)

__all__ = [
    "ClientOptions",
    "Endpoint",
    "RisingWaveClient",
    "RisingWaveError",
    "RisingWaveStatementError",
    "RisingWaveStatementTimeout",
    "RisingWaveUnavailable",
]
