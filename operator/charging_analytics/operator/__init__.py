"""The Kubernetes side: Kopf handlers (``main``), the reconcile service, settings, metrics."""
