"""Peering misconfigurations are found and reported, not silent."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from charging_analytics.operator.kube import ApiSession
from charging_analytics.operator.peering import PeeringCheck, peering_problems
from testbed.controlplane import ControlPlane

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _peer(priority: int, seconds_ago: float = 1) -> dict[str, object]:
    seen = (NOW - timedelta(seconds=seconds_ago)).isoformat()
    return {"priority": priority, "lastseen": seen, "lifetime": 60}


def test_a_healthy_peering_has_no_problem() -> None:
    body = {"status": {"a": _peer(5), "b": _peer(7)}}
    assert peering_problems("ClusterKopfPeering/x", body, 5, "pod-a", NOW) == []


def test_a_missing_peering_object_is_a_problem_naming_it() -> None:
    (problem,) = peering_problems("ClusterKopfPeering/x", None, 5, "pod-a", NOW)
    assert "ClusterKopfPeering/x does not exist" in problem


def test_replicas_sharing_a_priority_are_a_problem_but_dead_peers_do_not_count() -> None:
    body = {"status": {"a": _peer(5), "b": _peer(5)}}
    (problem,) = peering_problems("KopfPeering ns/x", body, 5, "pod-a", NOW)
    assert "share priority 5" in problem
    stale = {"status": {"a": _peer(5), "b": _peer(5, seconds_ago=600)}}
    assert peering_problems("KopfPeering ns/x", stale, 5, "pod-a", NOW) == []


def test_a_replica_without_a_pod_name_is_told_why_it_may_freeze() -> None:
    problems = peering_problems("ClusterKopfPeering/x", {"status": {}}, 0, "", NOW)
    assert any("CHA_POD_NAME" in p for p in problems)


def test_the_check_reads_the_real_apiserver_and_logs_a_missing_object(
    control_plane: ControlPlane, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    check = PeeringCheck("no-such-peering", ["default"], 5, "pod-a")

    async def read() -> list[str]:
        api = ApiSession()
        try:
            return await check.check(api)
        finally:
            await api.close()

    with caplog.at_level(logging.ERROR, logger="charging_analytics.operator.peering"):
        problems = asyncio.run(read())
    assert len(problems) == 1
    assert "KopfPeering default/no-such-peering does not exist" in problems[0]
    assert any("no-such-peering" in r.getMessage() for r in caplog.records)
    assert check.problems == problems
