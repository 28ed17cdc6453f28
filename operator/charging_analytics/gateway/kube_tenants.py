"""Tenants from the Kubernetes API: the ChargingAnalytics resources of the watched namespaces
(``spec.kafka``, ``spec.gateway``) and the Secrets they reference (SASL credentials, station
passwords), followed by list + watch so a change takes effect without a restart.

The functional core is :func:`tenants_from_resources` (resources and Secrets in, the same
:class:`~charging_analytics.gateway.config.Tenant` values a tenants file gives out, plus the
problems found); :class:`KubeTenantSource` is the shell: one informer (list, then watch from the
list's resourceVersion, re-list on 410 Gone) per namespace and kind, each in a thread, since the
``kubernetes`` client is synchronous.  It uses exactly ``list`` and ``watch`` on
``charginganalytics`` and on ``secrets`` in each watched namespace, which is what the chart's
gateway Role grants.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import kubernetes
from pydantic import ValidationError

from .. import constants as c
from ..render import Credential
from ..spec import ChargingAnalytics, SpecError, spec_error_path
from .config import Tenant, build_tenant

_log = logging.getLogger("charging_analytics.gateway.tenants")


def load_api_client() -> kubernetes.client.ApiClient:
    """The in-cluster configuration (ServiceAccount token), else $KUBECONFIG."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        # The client reads $KUBECONFIG only when it is imported; read it now.
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient()

#: Secret data by namespace, then Secret name, then key (decoded bytes).
SecretData = Mapping[str, Mapping[str, Mapping[str, bytes]]]

#: Seconds a watch request stays open before the apiserver ends it and it is renewed from the
#: last resourceVersion (short, so stopping never waits long).
WATCH_SECONDS: Final = 10
_BACKOFF_MAX: Final = 30.0


@dataclass(frozen=True)
class Problem:
    """Why a resource's tenant, or some of its stations, are not served. Names Secrets and keys,
    never their values."""

    resource: str  # namespace/name
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.message}"


def _credential(
    secrets: Mapping[str, Mapping[str, bytes]], name: str, user_key: str, password_key: str, where: str
) -> Credential:
    data = secrets.get(name)
    if data is None:
        raise ValueError(f"{where}: Secret {name} not found")
    missing = [k for k in (user_key, password_key) if k not in data]
    if missing:
        raise ValueError(f"{where}: Secret {name} has no key {', '.join(missing)}")
    try:
        return Credential(data[user_key].decode(), data[password_key].decode())
    except UnicodeDecodeError:
        raise ValueError(f"{where}: Secret {name} values are not UTF-8") from None


def tenant_of_resource(
    obj: Mapping[str, Any], secrets: Mapping[str, Mapping[str, bytes]]
) -> tuple[Tenant | None, list[Problem]]:
    """The tenant one ChargingAnalytics resource serves through the gateway (``None``: none),
    with ``secrets`` the Secret data of the resource's namespace."""
    meta = obj.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    if meta.get("deletionTimestamp"):
        return None, []  # being torn down: its pipeline is going away
    try:
        resource = ChargingAnalytics.model_validate(obj)
    except SpecError as err:
        return None, [Problem(where, f"spec.{err.field}: {err.message}")]
    except ValidationError as err:
        first = err.errors()[0]
        return None, [Problem(where, f"{spec_error_path(tuple(first['loc']), '')}: {first['msg']}")]
    spec = resource.spec
    if spec.gateway is None or not spec.gateway.enabled:
        return None, []
    kafka_credential = None
    ref = spec.kafka.security.credentials_secret_ref
    if ref is not None:
        try:
            where_ref = "spec.kafka.security.credentialsSecretRef"
            kafka_credential = _credential(secrets, ref.name, ref.username_key, ref.password_key, where_ref)
        except ValueError as err:
            return None, [Problem(where, str(err))]
    problems = []
    stations_secret = spec.gateway.stations_secret_ref.name
    data = secrets.get(stations_secret)
    if data is None:
        problems.append(Problem(where, f"spec.gateway.stationsSecretRef: Secret {stations_secret} not found"))
    passwords: dict[str, str] = {}
    for key, value in (data or {}).items():
        try:
            passwords[key] = value.decode()
        except UnicodeDecodeError:
            problems.append(Problem(where, f"Secret {stations_secret} key {key}: not UTF-8"))
    tenant, missing = build_tenant(
        spec.tenant, spec.kafka, spec.gateway.stations, passwords, kafka_credential
    )
    if missing and data is not None:
        problems.append(
            Problem(
                where,
                f"spec.gateway.stations: no password in Secret {stations_secret} for {', '.join(missing)} "
                "(refused until there is one)",
            )
        )
    return tenant, problems


def tenants_from_resources(
    resources: Iterable[Mapping[str, Any]], secrets: SecretData
) -> tuple[dict[str, Tenant], list[Problem]]:
    """Every served tenant by name. Two resources claiming one tenant name: the older one
    (creationTimestamp, then namespace/name) is served, the other is a problem."""

    def age(obj: Mapping[str, Any]) -> tuple[str, str, str]:
        meta = obj.get("metadata") or {}
        return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace")), str(meta.get("name")))

    tenants: dict[str, Tenant] = {}
    owners: dict[str, str] = {}
    problems: list[Problem] = []
    for obj in sorted(resources, key=age):
        meta = obj.get("metadata") or {}
        tenant, found = tenant_of_resource(obj, secrets.get(str(meta.get("namespace")), {}))
        problems += found
        if tenant is None:
            continue
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        if tenant.tenant in tenants:
            served = owners[tenant.tenant]
            problems.append(Problem(where, f"tenant {tenant.tenant} is already served for {served}"))
            continue
        tenants[tenant.tenant], owners[tenant.tenant] = tenant, where
    return tenants, problems


# --------------------------------------------------------------------------------------------
# The shell: informers
# --------------------------------------------------------------------------------------------


def _secret_data(secret: Any) -> dict[str, bytes]:
    out = {}
    for key, value in (secret.data or {}).items():
        try:
            out[key] = base64.b64decode(value)
        except (binascii.Error, ValueError):
            continue
    return out


class _Informer:
    """List, then watch, one kind in one namespace, keeping ``items`` (name -> object)."""

    def __init__(
        self, kind: str, namespace: str, list_fn: Callable[..., Any], changed: Callable[[], None]
    ) -> None:
        self.kind, self.namespace = kind, namespace
        self._list = list_fn
        self._changed = changed
        self.items: dict[str, Any] = {}
        self.synced = threading.Event()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"gateway-{kind}-{namespace}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @staticmethod
    def _name_and_rv(obj: Any) -> tuple[str, str | None]:
        if isinstance(obj, Mapping):
            meta = obj.get("metadata") or {}
            return str(meta.get("name")), meta.get("resourceVersion")
        return str(obj.metadata.name), obj.metadata.resource_version

    def _relist(self) -> str:
        listed = self._list(self.namespace)
        if isinstance(listed, Mapping):
            items, rv = listed.get("items") or [], (listed.get("metadata") or {}).get("resourceVersion")
        else:
            items, rv = listed.items or [], listed.metadata.resource_version
        self.items = {self._name_and_rv(o)[0]: o for o in items}
        self.synced.set()
        self._changed()
        return str(rv)

    def _run(self) -> None:
        backoff = 0.5
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._relist()
                watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
                for event in watch.stream(  # type: ignore[no-untyped-call]
                    self._list,
                    self.namespace,
                    resource_version=rv,
                    timeout_seconds=WATCH_SECONDS,
                    _request_timeout=(5, WATCH_SECONDS + 10),
                ):
                    if self._stop.is_set():
                        watch.stop()  # type: ignore[no-untyped-call]
                        break
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        rv = None  # typically 410 Gone: the resourceVersion is too old
                        break
                    name, rv = self._name_and_rv(obj)
                    if kind == "DELETED":
                        self.items.pop(name, None)
                    elif kind in ("ADDED", "MODIFIED"):
                        self.items[name] = obj
                    else:
                        continue  # BOOKMARK
                    self._changed()
                backoff = 0.5
                self.last_error = None
            except kubernetes.client.ApiException as err:
                if err.status == 410:
                    rv = None
                    continue
                self._failed(f"{err.status} {err.reason}", backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            except Exception as err:
                self._failed(type(err).__name__, backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    def _failed(self, error: str, backoff: float) -> None:
        if error != self.last_error:
            _log.warning(
                "cannot list/watch %s in namespace %s: %s (retrying)",
                self.kind,
                self.namespace,
                error,
                extra={"namespace": self.namespace, "kind": self.kind},
            )
        self.last_error = error
        self._stop.wait(backoff)


class KubeTenantSource:
    """The tenants of ``namespaces``; ``on_change(tenants)`` is called (from a worker thread,
    so it must not block: hand over to the event loop) with the whole new set after every change
    that alters it."""

    def __init__(
        self,
        namespaces: Iterable[str],
        on_change: Callable[[dict[str, Tenant]], object],
        api: kubernetes.client.ApiClient | None = None,
    ) -> None:
        self.api = api or load_api_client()
        self.namespaces = tuple(dict.fromkeys(namespaces))
        if not self.namespaces:
            raise ValueError("the Kubernetes tenant source needs at least one namespace to watch")
        self._on_change = on_change
        self._lock = threading.Lock()
        self._last: dict[str, Tenant] | None = None
        self._problems: set[Problem] = set()
        core = kubernetes.client.CoreV1Api(self.api)
        custom = kubernetes.client.CustomObjectsApi(self.api)

        def list_resources(ns: str, **kw: Any) -> Any:
            return custom.list_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL, **kw)

        ns_list = self.namespaces
        self._resources = {ns: _Informer(c.PLURAL, ns, list_resources, self._recompute) for ns in ns_list}
        self._secrets = {
            ns: _Informer("secrets", ns, core.list_namespaced_secret, self._recompute) for ns in ns_list
        }

    @property
    def _informers(self) -> list[_Informer]:
        return [*self._resources.values(), *self._secrets.values()]

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self._informers)

    def start(self) -> None:
        for informer in self._informers:
            informer.start()

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for informer in self._informers:
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def not_synced(self) -> list[str]:
        """What has not been listed yet, with the last error (for a start-up message)."""
        return [
            f"{i.kind} in {i.namespace}" + (f" ({i.last_error})" if i.last_error else "")
            for i in self._informers
            if not i.synced.is_set()
        ]

    def current(self) -> dict[str, Tenant]:
        with self._lock:
            return dict(self._last or {})

    def _recompute(self) -> None:
        if not self.synced:
            return  # a partial view would refuse stations that are served
        with self._lock:
            resources = [o for i in self._resources.values() for o in list(i.items.values())]
            secrets = {
                ns: {name: _secret_data(s) for name, s in list(i.items.items())}
                for ns, i in self._secrets.items()
            }
            tenants, problems = tenants_from_resources(resources, secrets)
            for problem in sorted(set(problems) - self._problems, key=str):
                _log.warning("tenant not fully served: %s", problem, extra={"resource": problem.resource})
            self._problems = set(problems)
            if tenants == self._last:
                return
            added = sorted(set(tenants) - set(self._last or {}))
            removed = sorted(set(self._last or {}) - set(tenants))
            self._last = tenants
            _log.info(
                "tenants from Kubernetes: %d served",
                len(tenants),
                extra={"added": added, "removed": removed, "tenants": sorted(tenants)},
            )
            # Under the lock: two informers' changes reach the gateway in the order computed.
            self._on_change(dict(tenants))

    def stop(self) -> None:
        for informer in self._informers:
            informer.stop()
