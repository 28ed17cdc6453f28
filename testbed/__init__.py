"""The test bed: real services for tests, scripts and benchmarks, no Docker.

- ``controlplane``: etcd + kube-apiserver (CRDs from ``crds/``), a REST client, a CA for users;
  ``kafka``: a KRaft Kafka broker; ``postgres``: PostgreSQL. Each is a :class:`server.Server`
  (workdir, processes, start/stop, context manager) run from the tools ``scripts/provision.sh``
  caches (``tools``), its processes supervised by ``process``.
- ``bed.Testbed`` starts them lazily for a pytest session (``tests/conftest.py``), the demo
  (``scripts/demo.py``), the benchmarks, or by hand (``python3 -m testbed up``).
- ``sqllint``: the SQL lint every rendered statement passes (RisingWave's streaming rules).
- ``specs``: the one factory of ChargingAnalytics specs and resources.
- ``polling``: the one wait-until-true helper.

The RisingWave double stays under ``tests/rw_double/`` (the product's test layout); the test bed
imports nothing from ``tests``.
"""
