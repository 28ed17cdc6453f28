"""The few Kubernetes API calls the reconcile service makes besides Kopf's own."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kubernetes

from .. import constants as c


class KubeError(RuntimeError):
    """A Kubernetes API call failed (e.g. 403): status code and reason, never the request body."""

    def __init__(self, status: int | None, reason: str | None) -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status


class SecretNotOwned(RuntimeError):
    """The Secret exists and is not owned by the resource that wants to write it."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"Secret {namespace}/{name} exists and is not owned by this resource")


@dataclass(frozen=True)
class StoredSecret:
    """What the operator reads of a Secret: its data as bytes, and which resources own it."""

    data: Mapping[str, bytes]
    owner_uids: frozenset[str] = frozenset()
    resource_version: str | None = None


def load_api_client() -> kubernetes.client.ApiClient:
    """The in-cluster configuration (ServiceAccount token), else $KUBECONFIG."""
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
        self.api = api or load_api_client()
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)

    async def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        """A Secret's data (bytes: a truststore need not be text) and owners, or None if absent."""

        def read() -> StoredSecret | None:
            try:
                secret = self.core.read_namespaced_secret(name, namespace)
            except kubernetes.client.ApiException as err:
                if err.status == 404:
                    return None
                raise KubeError(err.status, err.reason) from None
            meta = secret.metadata or kubernetes.client.V1ObjectMeta()
            return StoredSecret(
                data={k: base64.b64decode(v) for k, v in (secret.data or {}).items()},
                owner_uids=frozenset(
                    ref.uid for ref in (meta.owner_references or []) if ref.kind == c.KIND and ref.uid
                ),
                resource_version=meta.resource_version,
            )

        return await asyncio.to_thread(read)

    async def write_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, str],
        existing: StoredSecret | None,
    ) -> None:
        """Create the Secret, or replace the data of one the resource ``owner`` already owns.

        Never writes into a Secret someone else created: ``existing`` (read just before) must be
        owned by ``owner``, and the patch carries its resourceVersion, so a Secret replaced in
        between makes the API server refuse (409) rather than the operator clobber it.
        """
        if existing is not None and owner["uid"] not in existing.owner_uids:
            raise SecretNotOwned(namespace, name)
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "charging-analytics-operator"},
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": False}],
        }
        body: Any = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": meta,
            "stringData": dict(data),
        }

        def write() -> None:
            try:
                if existing is None:
                    self.core.create_namespaced_secret(namespace, body)
                else:
                    patch = {
                        "metadata": {"resourceVersion": existing.resource_version},
                        "stringData": dict(data),
                    }
                    self.core.patch_namespaced_secret(name, namespace, patch)
            except kubernetes.client.ApiException as err:
                raise KubeError(err.status, err.reason) from None

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
