"""The operator writes only Secrets it owns: never another application's, never another resource's."""

from __future__ import annotations

import base64
import time

from charging_analytics import constants as c
from testbed.polling import wait_for
from tests.service.harness import Harness


def _secret(harness: Harness, name: str) -> dict[str, object]:
    out: dict[str, object] = harness.rest.get(f"/api/v1/namespaces/{harness.ns}/secrets/{name}")
    return out


def _alter_users(harness: Harness) -> list[str]:
    return [s for s in harness.rw.statements if s.lstrip().upper().startswith("ALTER USER")]


def test_a_foreign_secret_named_for_the_read_only_user_is_untouched_and_the_resource_stalls(
    harness: Harness,
) -> None:
    harness.secret("app-db", {"username": "app", "password": "the-apps-own-password"})
    before = _secret(harness, "app-db")
    body = harness.tenant("acme", readOnlyUser={"enabled": True, "secretName": "app-db"})
    with harness.operator():
        harness.create(body)
        obj = harness.wait_condition("acme", c.COND_STALLED, "True", reason="SecretNotOwned", timeout=30)
        time.sleep(3)  # further reconciles (drift timer, retries) must not write either
        after = _secret(harness, "app-db")
    stalled = next(x for x in obj["status"]["conditions"] if x["type"] == c.COND_STALLED)
    assert "app-db" in stalled["message"]
    assert "spec.readOnlyUser.secretName" in stalled["message"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]  # type: ignore[index]
    data = {k: base64.b64decode(v).decode() for k, v in after["data"].items()}  # type: ignore[attr-defined]
    assert data == {"username": "app", "password": "the-apps-own-password"}
    assert "ownerReferences" not in after["metadata"]  # type: ignore[operator]
    assert f"{body['spec']['tenant']}_reader" not in harness.rw.users()


def test_two_resources_naming_one_secret_do_not_rotate_each_others_password(harness: Harness) -> None:
    first = harness.tenant("first", readOnlyUser={"enabled": True, "secretName": "shared-reader"})
    second = harness.tenant("second", readOnlyUser={"enabled": True, "secretName": "shared-reader"})
    with harness.operator():
        harness.create(first)
        harness.wait_ready("first", timeout=30)
        owned = _secret(harness, "shared-reader")
        harness.create(second)
        harness.wait_condition("second", c.COND_STALLED, "True", reason="SecretNotOwned", timeout=30)
        harness.rw.clear_statements()
        time.sleep(6)  # three drift intervals for both resources (the test interval is 2 s)
        rotations = _alter_users(harness)
        after = _secret(harness, "shared-reader")
        assert harness.condition("first", c.COND_READY)["status"] == "True"  # type: ignore[index]
    assert rotations == []
    assert after["data"] == owned["data"]
    owners = [ref["uid"] for ref in after["metadata"]["ownerReferences"]]  # type: ignore[index]
    assert owners == [harness.get("first")["metadata"]["uid"]]  # type: ignore[index]
    assert f"{second['spec']['tenant']}_reader" not in harness.rw.users()


def test_a_deleted_operator_secret_is_recreated_with_a_new_password(harness: Harness) -> None:
    body = harness.tenant("acme", readOnlyUser={"enabled": True})
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme", timeout=30)
        old = _secret(harness, "acme-readonly")["data"]["password"]  # type: ignore[index]
        harness.rest.delete(f"/api/v1/namespaces/{harness.ns}/secrets/acme-readonly")
        wait_for(
            lambda: harness.get("acme") and _exists(harness, "acme-readonly"), 30, "the Secret recreated"
        )
        new = _secret(harness, "acme-readonly")["data"]["password"]  # type: ignore[index]
    assert new != old


def _exists(harness: Harness, name: str) -> bool:
    try:
        _secret(harness, name)
    except Exception:
        return False
    return True


def test_a_non_utf8_password_is_a_stalled_reason_naming_the_key_and_binary_keys_are_fine(
    harness: Harness,
) -> None:
    harness.alerts_db_secret("acme")
    path = f"/api/v1/namespaces/{harness.ns}/secrets/acme-alerts-db"
    truststore = base64.b64encode(b"\xfe\xed\xfe\xed\x00\x02\xff").decode()
    harness.rest.merge_patch(path, {"data": {"truststore.jks": truststore}})
    body = harness.tenant("acme", postgres_sink=True)
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme", timeout=30)  # a binary key nobody reads as text is supported
        harness.rest.merge_patch(path, {"data": {"password": base64.b64encode(b"\xff\xfe").decode()}})
        obj = harness.wait_condition(
            "acme", c.COND_STALLED, "True", reason="SecretValueNotText", timeout=30, generation=False
        )
    stalled = next(x for x in obj["status"]["conditions"] if x["type"] == c.COND_STALLED)
    assert "'password'" in stalled["message"]
    assert "acme-alerts-db" in stalled["message"]
