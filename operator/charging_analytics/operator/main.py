"""Kopf handlers: decorators and thin wrappers only. The logic lives in ``service.py``.

Run with ``charging-analytics operator`` (or ``kopf run -m charging_analytics.operator.main``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from .. import constants as c
from .. import ledger
from ..render import all_secret_names
from ..spec import ChargingAnalyticsSpec
from ..status import Origin, Reason
from . import metrics
from .dashboards import Owner, read_only_secret
from .kube import REQUEST_TIMEOUT_SECONDS, connection_info
from .peering import PeeringCheck
from .quiet import ValidatedSpecs
from .service import EventType, Outcome, Resource, RetryLater, Service
from .settings import OperatorSettings

SETTINGS = OperatorSettings()
RESOURCE = (c.GROUP, c.VERSION, c.PLURAL)
log = logging.getLogger("charging_analytics.operator")


#: The id of the daemon that runs each resource's drift passes.
DRIFT_CHECK = "drift_check"


def _service(memo: Any) -> Service:
    service: Service = memo.service
    return service


def _body(body: Mapping[str, Any]) -> Any:
    """Kopf's event posting accepts any mapping with apiVersion/kind/metadata."""
    return dict(body)


def _post_events(body: Mapping[str, Any], outcome: Outcome) -> None:
    # kopf.event posts whatever settings.posting.level is (that level filters log lines only).
    for type_, reason, message in outcome.events:
        kopf.event(_body(body), type=type_, reason=reason, message=message)


async def _reconcile(body: Mapping[str, Any], memo: Any, origin: Origin) -> None:
    outcome = await _service(memo).reconcile(Resource.from_body(body), origin=origin)
    _post_events(body, outcome)
    if outcome.retry_after is not None and origin != Origin.TIMER:
        message = outcome.retry_message or (
            outcome.conditions[0].message if outcome.conditions else outcome.result
        )
        raise kopf.TemporaryError(message, delay=outcome.retry_after)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Configure Kopf and build the service (pools, caches) once."""
    settings.persistence.finalizer = c.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.ANNOTATION_KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.ANNOTATION_KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # explicit events only; no log lines as events
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 90
    settings.networking.request_timeout = REQUEST_TIMEOUT_SECONDS
    settings.execution.max_workers = 8
    # A deletion waits for the resource's drift-check daemon to finish its pass. Kopf re-checks a
    # finishing daemon only every cancellation_polling seconds (60 by default), which held the
    # finalizer for a minute whenever a deletion arrived during a pass.
    settings.background.cancellation_polling = 1.0
    # run() hands its settings over in the memo; under `kopf run -m` they are read now, at
    # start-up.
    config: OperatorSettings = getattr(memo, "config", None) or OperatorSettings()
    memo.config = config
    # Serving explicit namespaces needs no cluster-wide list of namespaces or CRDs; without this,
    # Kopf retries those lists for about a minute under namespaced RBAC before serving anything.
    settings.scanning.disabled = bool(config.namespaces)
    metrics.serve(config.metrics_port)
    memo.service = Service(config)
    if config.peering_name:
        check = PeeringCheck(
            config.peering_name, config.namespaces, _priority(), os.environ.get("CHA_POD_NAME", "")
        )
        memo.peering = check
        memo.peering_task = asyncio.create_task(check.run(memo.service.kube.api))


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account, else the kubeconfig named by $KUBECONFIG (read at login time)."""
    return connection_info(settings)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    task: asyncio.Task[None] | None = getattr(memo, "peering_task", None)
    if task is not None:
        task.cancel()
    service: Service | None = getattr(memo, "service", None)
    if service is not None:
        await service.close()


@kopf.on.create(*RESOURCE)
async def on_create(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A new tenant: build its pipeline."""
    await _reconcile(body, memo, Origin.CREATE)


@kopf.on.update(*RESOURCE)
async def on_update(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A changed spec or annotation (approval): re-plan and apply the affected subgraph."""
    await _reconcile(body, memo, Origin.UPDATE)


@kopf.on.resume(*RESOURCE)
async def on_resume(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Operator restart: converge whatever was interrupted."""
    await _reconcile(body, memo, Origin.RESUME)


async def stopped_within(stopped: kopf.DaemonStopped, seconds: float) -> bool:
    """Whether Kopf stops the daemon within ``seconds``.

    Not ``stopped.wait(seconds)``: Kopf waits for that in a task of its own, and the task ends
    with the TimeoutError each time the seconds run out. At exit Kopf re-raises every error its
    remaining tasks ended with, so an operator stopping as such a wait ran out exited with that
    TimeoutError. Here the time limit belongs to the daemon's own task, and the wait it cuts
    short ends cancelled, which Kopf ignores. The flag is read after the wait either way: a stop
    that comes as the seconds run out is still a stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopped.wait(), seconds)
    return bool(stopped)


@kopf.daemon(*RESOURCE, id=DRIFT_CHECK)
async def drift_check(
    body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Periodic drift check against the shared per-endpoint snapshot; corrects under onDrift: Correct.

    One long-lived daemon per resource that waits between its passes, not a Kopf timer: Kopf runs
    every timer pass through its handler machinery (handler state, outcomes, a patch to apply, a
    log line, a new sleeping task), which at a thousand Ready tenants cost more CPU than the
    passes themselves. Kopf still decides when a resource's passes run at all: it stops the
    daemon when the resource is being deleted (and waits for a pass in progress to end), when
    peering pauses this replica, and at exit. The body is Kopf's live view, current at each pass;
    the service's per-resource lock orders a pass with the create and update handlers."""
    service = _service(memo)
    interval = service.settings.drift_interval_seconds
    # A fleet's daemons all start together when the operator does: the first pass waits a random
    # share of the interval more, so that passes stay spread out.
    delay = interval + service.first_drift_delay(Resource.from_body(body).owner)
    while not await stopped_within(stopped, delay):
        try:
            await _reconcile(body, memo, Origin.TIMER)
        except Exception:  # a failed pass is logged (and posted); the next one comes as usual
            logger.exception("drift check failed")
        delay = interval


@kopf.on.delete(*RESOURCE)
async def on_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Drop the tenant's objects (Delete) or release them (Orphan), then let the finalizer go."""
    try:
        outcome = await _service(memo).delete(Resource.from_body(body))
    except RetryLater as err:
        blocked: list[tuple[EventType, str, str]] = [("Warning", Reason.DELETION_BLOCKED, str(err))]
        for type_, reason, message in _service(memo).unrepeated(Resource.from_body(body).owner, blocked):
            kopf.event(_body(body), type=type_, reason=reason, message=message)
        raise kopf.TemporaryError(str(err), delay=err.delay) from err
    _post_events(body, outcome)


def secrets_used(
    namespace: str, name: str, spec: Mapping[str, Any], specs: ValidatedSpecs | None = None
) -> set[str]:
    """The Secrets the resource ``namespace/name`` with ``spec`` reads: those it references and
    its read-only user's (which the operator writes: deleting it rotates the password).

    ``specs``: the service's validated specs, so that the index (run on every watch event of
    every resource) validates a spec only when it changed, and holds no model of its own."""
    try:
        if specs is None:
            model = ChargingAnalyticsSpec.model_validate(spec)
        else:
            model = specs.model(ledger.owner_id(namespace, name), dict(spec))
    except ValidationError:
        return set()  # an invalid spec reads no Secret; fixing it is an update of the resource
    used = all_secret_names(model)
    if model.read_only_user.enabled:
        used.add(read_only_secret(Owner(namespace, name, None), model))
    return used


@kopf.index(*RESOURCE)
async def secret_users(
    namespace: str | None, name: str | None, spec: Mapping[str, Any], memo: kopf.Memo, **_: Any
) -> dict[tuple[str, str], str]:
    """(namespace, Secret) -> the names of the resources that read it.

    Kopf fills the index from its initial listing before any other handler runs and drops a
    resource's entries when it is deleted, so it is complete right after a restart."""
    if namespace is None or name is None:
        return {}
    service: Service | None = getattr(memo, "service", None)
    specs = service.specs if service is not None else None
    return {(namespace, secret): name for secret in secrets_used(namespace, name, spec, specs)}


def _users(kwargs: Mapping[str, Any]) -> kopf.Index[tuple[str, str], str]:
    """The index, which Kopf passes to filters and handlers as the keyword named after it."""
    index: kopf.Index[tuple[str, str], str] = kwargs["secret_users"]
    return index


def _is_used(namespace: str | None, name: str, **kwargs: Any) -> bool:
    """Only Secrets some resource reads reach the handler."""
    return namespace is not None and (namespace, name) in _users(kwargs)


@kopf.on.event("", "v1", "secrets", when=_is_used)
async def on_secret(
    event: Mapping[str, Any], namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any
) -> None:
    """A Secret a resource reads changed: reconcile each resource that reads it."""
    if event.get("type") is None or namespace is None:
        return  # initial listing: resume handlers cover it
    service = _service(memo)
    for res_name in sorted(set(_users(kwargs).get((namespace, name), ()))):
        body = await service.kube.get_resource(namespace, res_name)
        if body is None or (body.get("spec") or {}).get("suspend"):
            continue  # gone, or paused (a deleting resource is skipped by the service)
        outcome = await service.reconcile(Resource.from_body(body), origin=Origin.SECRET)
        _post_events(body, outcome)


@kopf.on.probe(id="peering_problems")
async def peering_probe(memo: kopf.Memo, **_: Any) -> list[str]:
    """Liveness detail: peering misconfigurations (missing object, replicas sharing a priority)."""
    check: PeeringCheck | None = getattr(memo, "peering", None)
    return list(check.problems) if check else []


@kopf.on.probe(id="risingwave_pools")
async def probe(memo: kopf.Memo, **_: Any) -> int:
    """Liveness detail: number of open RisingWave pools."""
    service: Service | None = getattr(memo, "service", None)
    return len(service.endpoints.clients) if service else 0


def _priority() -> int:
    """Replicas must differ in priority, or Kopf peering freezes all of them: derive it from the
    pod name the chart passes in, so the newest-named pod does not matter."""
    pod = os.environ.get("CHA_POD_NAME", "")
    return int(hashlib.sha256(pod.encode()).hexdigest()[:6], 16) if pod else 0


#: Allocations (net of deallocations) between two young collections: ten times Python's default.
GC_YOUNG_THRESHOLD = 7000


def tune_gc() -> None:
    """Garbage collection for a long-running operator with a large, stable heap.

    A thousand tenants keep a few million objects alive (Kopf's bodies, the drift passes'
    reports, the catalog snapshot). Python's default thresholds made that a full collection (about half a
    second) every drift interval, once each snapshot read had added its quarter of the long-lived
    objects since the last one: 15 % of the steady-state CPU. With young collections ten times
    rarer, a full one is due ten times less often; what start-up built (modules, Kopf, the
    models' schemas) is frozen out of every collection, as it lives as long as the process.
    """
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    gc.freeze()


def run(args: argparse.Namespace) -> int:
    """Entry point of ``charging-analytics operator``: the settings, with the command line's
    namespaces and peering, reach the start-up handler in Kopf's memo."""
    kopf.configure(
        verbose=False,
        log_format=kopf.LogFormat.JSON if SETTINGS.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    namespaces = list(args.namespace) or SETTINGS.namespaces
    clusterwide = bool(args.all_namespaces or not namespaces)
    peering = args.peering if args.peering and not args.standalone else ""
    config = SETTINGS.model_copy(
        update={"watch_namespaces": "" if clusterwide else ",".join(namespaces), "peering_name": peering}
    )
    tune_gc()
    asyncio.run(
        kopf.operator(
            priority=_priority(),
            clusterwide=clusterwide,
            namespaces=[] if clusterwide else namespaces,
            standalone=args.standalone or args.peering is None,
            peering_name=args.peering,
            liveness_endpoint=args.liveness,
            memo=kopf.Memo(config=config),
        )
    )
    return 0
