"""The real test bed, no Docker: etcd + kube-apiserver (``controlplane``), a KRaft Kafka broker
(``kafka``) and PostgreSQL (``postgres``), run from the tools ``scripts/provision.sh`` caches.

``testbed.Testbed`` starts them lazily for a pytest session (``tests/conftest.py``) or for the
demo (``scripts/testbed.py``). Processes are supervised by ``process``; tool lookup and pinned
versions live in ``tools``.
"""
