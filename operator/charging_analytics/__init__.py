"""ChargingAnalytics operator: EV-charging tenants as RisingWave streaming pipelines."""

__version__ = "0.1.0"
