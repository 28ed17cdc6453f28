"""Fixtures for the RisingWave boundary tests (the double, or live with ``RISINGWAVE_DSN``)."""

from tests.rw_double.fixtures import risingwave, risingwave_double, rw_schema

__all__ = ["risingwave", "risingwave_double", "rw_schema"]
