"""The few Kubernetes API calls the reconcile service makes besides Kopf's own."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from typing import Any

import kubernetes

from .. import constants as c


class KubeError(RuntimeError):
    """A Kubernetes API call failed (e.g. 403): status code and reason, never the request body."""

    def __init__(self, status: int | None, reason: str | None) -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status


def _load_config() -> kubernetes.client.ApiClient:
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        # The client reads $KUBECONFIG only when it is imported; read it now.
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient()


class KubeApi:
    """Secrets (read, and write for generated credentials) and the resource's status subresource.

    The synchronous client runs in worker threads so the event loop never blocks.
    """

    def __init__(self, api: kubernetes.client.ApiClient | None = None) -> None:
        self.api = api or _load_config()
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data decoded to text, or None when it does not exist."""

        def read() -> dict[str, str] | None:
            try:
                secret = self.core.read_namespaced_secret(name, namespace)
            except kubernetes.client.ApiException as err:
                if err.status == 404:
                    return None
                raise KubeError(err.status, err.reason) from None
            data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
            return data

        return await asyncio.to_thread(read)

    async def write_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, str] | None = None,
    ) -> None:
        """Create (or replace the data of) a Secret the operator generates, owned by the resource."""
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "charging-analytics-operator"},
        }
        if owner is not None:
            meta["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": False}]
        body: Any = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": meta,
            "stringData": dict(data),
        }

        def write() -> None:
            try:
                self.core.create_namespaced_secret(namespace, body)
            except kubernetes.client.ApiException as err:
                if err.status != 409:
                    raise KubeError(err.status, err.reason) from None
                try:
                    self.core.patch_namespaced_secret(name, namespace, {"stringData": dict(data)})
                except kubernetes.client.ApiException as err2:
                    raise KubeError(err2.status, err2.reason) from None

        await asyncio.to_thread(write)

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        def patch() -> None:
            try:
                self.custom.patch_namespaced_custom_object_status(
                    c.GROUP, c.VERSION, namespace, c.PLURAL, name, {"status": dict(status)}
                )
            except kubernetes.client.ApiException as err:
                if err.status != 404:  # deleted meanwhile: nothing to report on
                    raise

        await asyncio.to_thread(patch)

    async def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        def get() -> dict[str, Any] | None:
            try:
                obj = self.custom.get_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, name)
                return dict(obj)  # type: ignore[call-overload,no-any-return]
            except kubernetes.client.ApiException as err:
                if err.status == 404:
                    return None
                raise

        return await asyncio.to_thread(get)

    async def close(self) -> None:
        await asyncio.to_thread(self.api.close)
