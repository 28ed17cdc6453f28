"""The Kubernetes API calls the operator makes besides Kopf's own: one asynchronous HTTP session.

The operator authenticates exactly as Kopf does: :func:`login` asks Kopf's own login functions
(the in-cluster ServiceAccount, else ``$KUBECONFIG``) for a :class:`kopf.ConnectionInfo`, whose
SSL context and ``Authorization`` header make one ``aiohttp`` session (aiohttp is Kopf's own
HTTP client). So the operator process needs no second Kubernetes client library, and no call
holds a worker thread. A 401 (an expired ServiceAccount token, which the kubelet rotates in the
mounted file) logs in again once and repeats the request, as Kopf does.

The reconcile service depends on the :class:`KubeApi` protocol, not on this module's client, so
tests can give it an in-memory stand-in.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import kopf

from .. import constants as c
from ..secret_source import StoredSecret

log = logging.getLogger(__name__)

#: Kopf's own networking.request_timeout as the operator configures it (main.startup).
REQUEST_TIMEOUT_SECONDS = 30.0
MERGE_PATCH = "application/merge-patch+json"
#: Attempts of a request the apiserver throttles (429), each after its Retry-After (capped).
THROTTLED_ATTEMPTS = 4
RETRY_AFTER_MAX_SECONDS = 5.0


def _retry_after(header: str | None) -> float:
    try:
        return min(max(float(header or 1), 0.1), RETRY_AFTER_MAX_SECONDS)
    except ValueError:
        return 1.0


class KubeError(RuntimeError):
    """A Kubernetes API call failed (e.g. 403): status code and reason, never the request body."""

    def __init__(self, status: int | None, reason: str | None) -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status
        self.reason = reason


class SecretNotOwned(RuntimeError):
    """The Secret exists and is not owned by the resource that wants to write it."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"Secret {namespace}/{name} exists and is not owned by this resource")


def connection_info(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    """The in-cluster ServiceAccount, else the kubeconfig named by $KUBECONFIG (read now): the
    login of Kopf (main.login) and of the operator's own session."""
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
        settings=settings
    ) or kopf.login_with_kubeconfig(settings=settings)
    return info


def login() -> kopf.ConnectionInfo:
    """:func:`connection_info` for the operator's session (the login functions read only
    ``settings.networking.trust_env`` of Kopf's settings, left at its default)."""
    info = connection_info(kopf.OperatorSettings())
    if info is None:
        raise KubeError(None, "no Kubernetes credentials: not in a cluster and $KUBECONFIG is not set")
    return info


def object_path(
    group: str, version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    """The REST path of a collection or object (``group`` empty: the core API)."""
    path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace is not None:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{plural}"
    return path + (f"/{quote(name, safe='')}" if name is not None else "")


class ApiSession:
    """One aiohttp session to the API server, opened on first use with :func:`login`'s credentials.

    :meth:`request` returns the decoded JSON answer or raises :class:`KubeError` with the HTTP
    status and reason (the apiserver's message is not kept: it may quote the request).
    """

    def __init__(
        self,
        login: Callable[[], kopf.ConnectionInfo] = login,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self._login = login
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._server = ""

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            info = self._login()
            self._server = info.server.rstrip("/")
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=info.as_ssl_context()),
                headers={"User-Agent": "charging-analytics-operator", **info.as_http_headers()},
                timeout=self._timeout,
                trust_env=info.trust_env,
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        relogged = False
        throttled = 0
        while True:  # at most one login again and THROTTLED_ATTEMPTS throttled answers
            session = self._open()
            try:
                async with session.request(
                    method,
                    self._server + path,
                    json=body,
                    params=params,
                    headers={"Content-Type": content_type} if body is not None else None,
                ) as response:
                    if response.status == 401 and not relogged:
                        relogged = True
                        await self._relogin()
                        continue
                    if response.status == 429:
                        throttled += 1
                        if throttled < THROTTLED_ATTEMPTS:
                            # the apiserver's priority and fairness asks to come back later
                            await asyncio.sleep(_retry_after(response.headers.get("Retry-After")))
                            continue
                    if response.status >= 400:
                        # the last answer is the error, whatever was retried before it
                        raise KubeError(response.status, response.reason)
                    text = await response.text()
                    return json.loads(text) if text else None
            except aiohttp.ClientError as err:
                raise KubeError(None, type(err).__name__) from None
            except TimeoutError:
                raise KubeError(None, "timed out") from None

    async def _relogin(self) -> None:
        log.info("the API server refused the credentials (401): logging in again")
        await self.close()

    async def get(self, path: str) -> Any:
        """The object at ``path``, or None if it does not exist (404)."""
        try:
            return await self.request("GET", path)
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class KubeApi(Protocol):
    """What the reconcile service asks of Kubernetes: Secrets, the resource and its status.

    ``api`` is the raw session the Grafana objects are managed with (dashboards.py).
    """

    api: ApiSession

    async def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        """A Secret's data (bytes: a truststore need not be text) and owners, or None if absent."""
        ...

    async def write_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, str],
        existing: StoredSecret | None,
    ) -> None:
        """Create the Secret, or replace the data of one the resource ``owner`` already owns."""
        ...

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge ``status`` into the resource's status subresource (nothing if it is gone)."""
        ...

    async def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The resource's body, or None if it does not exist."""
        ...

    async def close(self) -> None: ...


class KubeClient:
    """:class:`KubeApi` over the API server (an :class:`ApiSession`)."""

    def __init__(self, api: ApiSession | None = None) -> None:
        self.api = api or ApiSession()

    async def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        secret = await self.api.get(object_path("", "v1", "secrets", namespace, name))
        if secret is None:
            return None
        meta = secret.get("metadata") or {}
        return StoredSecret(
            data={k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()},
            owner_uids=frozenset(
                ref["uid"]
                for ref in meta.get("ownerReferences") or []
                if ref.get("kind") == c.KIND and ref.get("uid")
            ),
            resource_version=meta.get("resourceVersion"),
        )

    async def write_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, str],
        existing: StoredSecret | None,
    ) -> None:
        """Never writes into a Secret someone else created: ``existing`` (read just before) must be
        owned by ``owner``, and the patch carries its resourceVersion, so a Secret replaced in
        between makes the API server refuse (409) rather than the operator clobber it.
        """
        if existing is not None and owner["uid"] not in existing.owner_uids:
            raise SecretNotOwned(namespace, name)
        if existing is None:
            meta: dict[str, Any] = {
                "name": name,
                "namespace": namespace,
                "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY},
                "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": False}],
            }
            body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta}
            await self.api.request(
                "POST", object_path("", "v1", "secrets", namespace), body={**body, "stringData": dict(data)}
            )
            return
        patch = {"metadata": {"resourceVersion": existing.resource_version}, "stringData": dict(data)}
        await self.api.request(
            "PATCH", object_path("", "v1", "secrets", namespace, name), body=patch, content_type=MERGE_PATCH
        )

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        path = object_path(c.GROUP, c.VERSION, c.PLURAL, namespace, name) + "/status"
        try:
            await self.api.request("PATCH", path, body={"status": dict(status)}, content_type=MERGE_PATCH)
        except KubeError as err:
            if err.status != 404:  # deleted meanwhile: nothing to report on
                raise

    async def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        body = await self.api.get(object_path(c.GROUP, c.VERSION, c.PLURAL, namespace, name))
        return dict(body) if body is not None else None

    async def close(self) -> None:
        await self.api.close()
