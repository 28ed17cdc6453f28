"""The test bed's own tests: its services (``testbed/``) and the RisingWave double (``tests/rw_double/``)."""
