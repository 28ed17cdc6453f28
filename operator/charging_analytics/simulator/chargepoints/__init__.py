"""Simulated OCPP charge points (1.6J and 2.0.1) that drive the fleet model against a gateway.

:mod:`.script` is pure (what each charge point sends, when); :mod:`.runner` connects them over
WebSocket with the ``ocpp`` library and plays the scripts.  The event contract stays in
:mod:`charging_analytics.events`; the fleet model in :mod:`charging_analytics.simulator.simulate`.
"""

from .runner import FleetConfig, FleetStats, FleetSummary, run_fleet, run_fleet_sync, station_url
from .script import (
    OCPP_VERSIONS,
    OcppVersion,
    OfflineConfig,
    StationProfile,
    Step,
    fleet_profiles,
    station_script,
)

__all__ = [
    "OCPP_VERSIONS",
    "FleetConfig",
    "FleetStats",
    "FleetSummary",
    "OcppVersion",
    "OfflineConfig",
    "StationProfile",
    "Step",
    "fleet_profiles",
    "run_fleet",
    "run_fleet_sync",
    "station_script",
    "station_url",
]
