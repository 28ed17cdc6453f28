"""Names shared by the CRD, the operator, the chart and the tests."""

from __future__ import annotations

from typing import Final

GROUP: Final = "analytics.evcharging.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ChargingAnalytics"
LIST_KIND: Final = "ChargingAnalyticsList"
PLURAL: Final = "charginganalytics"
SINGULAR: Final = "charginganalytics"
SHORT_NAMES: Final = ("cha",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

#: Finalizer the operator puts on every resource it manages.
FINALIZER: Final = f"{GROUP}/finalizer"

#: Annotation carrying the hash of the plan a human approved (destructive plans wait for it).
ANNOTATION_APPROVED_PLAN: Final = f"{GROUP}/approved-plan-hash"
#: Annotation that lets an operator release the finalizer when RisingWave is gone for good.
ANNOTATION_FORCE_DELETE: Final = f"{GROUP}/force-release-finalizer"
#: Label of every object the operator creates (the Secrets it writes, the Grafana objects), and its value.
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "charging-analytics-operator"
#: Annotation prefix Kopf uses for its own bookkeeping (progress, last-handled configuration).
ANNOTATION_KOPF_PREFIX: Final = f"kopf.{GROUP}"

# Condition types (kstatus-compatible; Argo CD's health script reads them).
COND_READY: Final = "Ready"
COND_RECONCILING: Final = "Reconciling"
COND_STALLED: Final = "Stalled"
COND_DRIFTED: Final = "Drifted"
CONDITION_TYPES: Final = (COND_READY, COND_RECONCILING, COND_STALLED, COND_DRIFTED)

#: Name of the Kafka source every tenant's pipeline reads.
SOURCE_NAME: Final = "ocpp_events"
