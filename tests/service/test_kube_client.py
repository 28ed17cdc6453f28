"""The operator's own API session (``operator/kube.py``) against the real apiserver: what a call
returns and how it fails (status and reason, never the request), and a second login on 401."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import kopf
import pytest

from charging_analytics import constants as c
from charging_analytics.operator.kube import ApiSession, KubeClient, KubeError, SecretNotOwned
from testbed.controlplane import ControlPlane

T = TypeVar("T")
OWNER = {
    "apiVersion": c.API_VERSION,
    "kind": c.KIND,
    "name": "acme",
    "uid": "3c4d1e9a-0000-4000-8000-000000000001",
}


def _admin_login(kubeconfig: Path) -> Callable[[], kopf.ConnectionInfo]:
    def login() -> kopf.ConnectionInfo:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("KUBECONFIG", str(kubeconfig))
            info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert info is not None
        return info

    return login


def _with_client(control_plane: ControlPlane, use: Callable[[KubeClient], Awaitable[T]]) -> T:
    async def run() -> T:
        client = KubeClient(ApiSession(_admin_login(control_plane.kubeconfig)))
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(run())


def test_absent_objects_read_as_none(control_plane: ControlPlane, namespace: str) -> None:
    async def use(kube: KubeClient) -> tuple[Any, Any]:
        return await kube.read_secret(namespace, "absent"), await kube.get_resource(namespace, "absent")

    assert _with_client(control_plane, use) == (None, None)


def test_a_secret_is_created_read_and_patched_only_at_the_version_read(
    control_plane: ControlPlane, namespace: str
) -> None:
    async def use(kube: KubeClient) -> tuple[bytes, int | None, bytes]:
        await kube.write_secret(namespace, "reader", {"password": "one"}, owner=OWNER, existing=None)
        first = await kube.read_secret(namespace, "reader")
        assert first is not None
        assert first.owner_uids == {OWNER["uid"]}
        await kube.write_secret(namespace, "reader", {"password": "two"}, owner=OWNER, existing=first)
        try:  # the Secret changed since ``first`` was read: the apiserver refuses
            await kube.write_secret(namespace, "reader", {"password": "three"}, owner=OWNER, existing=first)
            conflict = None
        except KubeError as err:
            conflict = err.status
        now = await kube.read_secret(namespace, "reader")
        assert now is not None
        return first.data["password"], conflict, now.data["password"]

    assert _with_client(control_plane, use) == (b"one", 409, b"two")


def test_a_secret_of_someone_else_is_never_written(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.rest.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "theirs"}, "stringData": {"k": "v"}},
    )

    async def use(kube: KubeClient) -> None:
        existing = await kube.read_secret(namespace, "theirs")
        await kube.write_secret(namespace, "theirs", {"password": "x"}, owner=OWNER, existing=existing)

    with pytest.raises(SecretNotOwned):
        _with_client(control_plane, use)


def test_a_refused_call_says_status_and_reason_but_not_what_was_sent(
    control_plane: ControlPlane, namespace: str
) -> None:
    async def use(kube: KubeClient) -> None:
        await kube.write_secret(
            namespace, "Not_A_Name", {"password": "p4ss-w0rd"}, owner=OWNER, existing=None
        )

    with pytest.raises(KubeError) as info:
        _with_client(control_plane, use)
    assert (info.value.status, str(info.value)) == (422, "422 Unprocessable Entity")


def test_status_is_merged_into_the_status_subresource_and_a_deleted_resource_is_not_an_error(
    control_plane: ControlPlane, namespace: str
) -> None:
    path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PLURAL}"
    body = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": "acme"},
        "spec": {
            "tenant": "acme",
            "kafka": {"bootstrapServers": ["k:9092"], "eventsTopic": "ocpp.acme.events"},
            "analytics": {
                "tariffs": {"currency": "EUR", "pricePerKwh": {"CCS": 1, "CHAdeMO": 1, "Type2": 1}}
            },
        },
    }
    control_plane.rest.post(path, body)

    async def use(kube: KubeClient) -> tuple[Any, Any]:
        await kube.patch_status(namespace, "acme", {"observedGeneration": 1})
        await kube.patch_status(namespace, "acme", {"conditions": []})
        got = await kube.get_resource(namespace, "acme")
        assert got is not None
        await kube.patch_status(namespace, "gone", {"observedGeneration": 1})
        return got["status"], got["spec"]["tenant"]

    assert _with_client(control_plane, use) == ({"observedGeneration": 1, "conditions": []}, "acme")


def test_a_refused_login_logs_in_again_once_and_repeats_the_request(
    control_plane: ControlPlane, namespace: str
) -> None:
    good = _admin_login(control_plane.kubeconfig)
    logins: list[str] = []

    def login() -> kopf.ConnectionInfo:
        info = good()
        if not logins:  # an expired token: the apiserver answers 401
            info = dataclasses.replace(
                info,
                certificate_path=None,
                certificate_data=None,
                private_key_path=None,
                private_key_data=None,
                token="expired",
            )
        logins.append(info.token or "certificate")
        return info

    async def run() -> Any:
        api = ApiSession(login)
        try:
            return await api.get(f"/api/v1/namespaces/{namespace}")
        finally:
            await api.close()

    assert asyncio.run(run())["metadata"]["name"] == namespace
    assert logins == ["expired", "certificate"]
