"""Operator configuration, from environment variables (documented defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..tls import libpq_paths


class OperatorSettings(BaseSettings):
    """Every field maps to ``CHA_<FIELD>`` (e.g. ``CHA_DRIFT_INTERVAL_SECONDS``)."""

    model_config = SettingsConfigDict(env_prefix="CHA_", extra="ignore", frozen=True)

    # Default RisingWave endpoint for resources without spec.risingwave.
    default_rw_host: str | None = Field(None, description="Default RisingWave frontend host")
    default_rw_port: int = 4566
    default_rw_database: str = "dev"
    default_rw_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = (
        "prefer"
    )
    default_rw_user: str = "root"
    default_rw_password: str | None = Field(None, repr=False)
    # TLS files of the default endpoint (the chart mounts them from a Secret: risingwave.tls).
    default_rw_sslrootcert: str | None = Field(None, description="CA bundle (PEM file)")
    default_rw_sslcert: str | None = Field(None, description="Client certificate (PEM file)")
    default_rw_sslkey: str | None = Field(None, description="Client certificate's key (PEM file)")

    secret_store: Literal["auto", "risingwave", "inline"] = Field(
        "auto", description="Credentials as RisingWave SECRETs (licensed), inline, or probe (auto)"
    )
    zero_downtime: bool = Field(
        True, description="Rebuild changed views as shadow + SWAP (RisingWave >= 2.2)"
    )
    statement_timeout_seconds: float = 600.0
    connect_timeout_seconds: float = 5.0
    pool_max_size: int = Field(
        4, description="Connections per RisingWave endpoint (raised to max_concurrent_applies + 1)"
    )
    max_concurrent_applies: int = Field(
        3, ge=1, description="Plans applied at once per RisingWave endpoint; the rest queue"
    )

    progress_interval_seconds: float = Field(
        5.0, description="How often backfill progress is published while views are being built"
    )
    drift_interval_seconds: float = Field(60.0, description="How often each resource is checked for drift")
    catalog_cache_seconds: float = Field(
        60.0,
        description="Max age of the shared per-endpoint snapshot (the drift interval: one read per interval)",
    )
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 300.0
    deletion_retry_seconds: float = Field(
        10.0, description="Longest wait between deletion attempts (a force-release is seen this fast)"
    )

    check_kafka: bool = Field(True, description="Verify the events topic and create the alerts topic")
    kafka_timeout_seconds: float = 10.0
    manage_postgres_table: bool = Field(True, description="Create the PostgreSQL sink's target table")

    metrics_port: int = Field(9090, description="Prometheus metrics port; 0 disables")
    log_format: Literal["json", "plain"] = "plain"
    watch_namespaces: str = Field("", description="Comma-separated namespaces; empty means all")
    peering_name: str = Field("", description="Kopf peering object to check (the chart sets it); empty: none")

    @property
    def namespaces(self) -> list[str]:
        """The namespaces served (empty: all of them)."""
        return [n for n in self.watch_namespaces.split(",") if n]

    def default_rw_tls_files(self) -> dict[str, str]:
        """libpq parameters naming the default endpoint's TLS files."""
        return libpq_paths(self.default_rw_sslrootcert, self.default_rw_sslcert, self.default_rw_sslkey)

    @property
    def pool_size(self) -> int:
        """One connection more than the applies, so reads are never queued behind them."""
        return max(self.pool_max_size, self.max_concurrent_applies + 1)
