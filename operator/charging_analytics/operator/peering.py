"""Peering misconfigurations made visible.

With ``--peering <name>`` Kopf waits, handling nothing, until the peering object exists, and it
pauses every replica that shares the highest priority with another. Both look like an operator
that silently does nothing; this check logs them as errors and reports them in the liveness
probe's output (``/healthz``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .kube import ApiSession, object_path

log = logging.getLogger(__name__)

GROUP, VERSION = "kopf.dev", "v1"


def _alive(peer: Mapping[str, Any], now: datetime) -> bool:
    try:
        seen = datetime.fromisoformat(str(peer["lastseen"]))
        lifetime = timedelta(seconds=float(peer.get("lifetime", 60)))
    except (KeyError, ValueError, TypeError):
        return True  # unknown shape: count it, Kopf does too
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return seen + lifetime >= now


def peering_problems(
    where: str, body: Mapping[str, Any] | None, priority: int, pod_name: str, now: datetime | None = None
) -> list[str]:
    """What is wrong with a peering object (``None``: it does not exist) for a replica of
    ``priority`` running as ``pod_name``."""
    problems: list[str] = []
    if not pod_name:
        problems.append(
            "CHA_POD_NAME is not set: every replica gets priority 0, and Kopf pauses replicas that "
            "share a priority (the chart sets it from the pod name)"
        )
    if body is None:
        problems.append(
            f"peering object {where} does not exist: Kopf waits for it and handles nothing "
            "(create it, e.g. with the chart's peering.create, or run --standalone)"
        )
        return problems
    now = now or datetime.now(UTC)
    peers = [p for p in (body.get("status") or {}).values() if isinstance(p, Mapping) and _alive(p, now)]
    same = [p for p in peers if p.get("priority") == priority]
    if len(same) > 1:
        problems.append(
            f"{len(same)} live replicas in peering {where} share priority {priority}: Kopf pauses "
            "all of them (give each replica its own CHA_POD_NAME)"
        )
    return problems


class PeeringCheck:
    """Reads the peering object(s) every ``interval`` seconds and keeps the current problems."""

    def __init__(
        self, name: str, namespaces: Sequence[str], priority: int, pod_name: str, interval: float = 60.0
    ) -> None:
        self.name = name
        self.namespaces = list(namespaces)
        self.priority = priority
        self.pod_name = pod_name
        self.interval = interval
        self.problems: list[str] = []

    async def _read(self, api: ApiSession, namespace: str | None) -> Mapping[str, Any] | None:
        if namespace is None:
            path = object_path(GROUP, VERSION, "clusterkopfpeerings", None, self.name)
        else:
            path = object_path(GROUP, VERSION, "kopfpeerings", namespace, self.name)
        obj = await api.get(path)
        if obj is None:
            return None
        return obj if isinstance(obj, dict) else {}

    async def check(self, api: ApiSession) -> list[str]:
        problems: list[str] = []
        targets: list[str | None] = [*self.namespaces] or [None]
        for ns in targets:
            where = f"ClusterKopfPeering/{self.name}" if ns is None else f"KopfPeering {ns}/{self.name}"
            for problem in peering_problems(where, await self._read(api, ns), self.priority, self.pod_name):
                if problem not in problems:
                    problems.append(problem)
        for problem in problems:
            if problem not in self.problems:
                log.error("peering misconfigured: %s", problem)
        self.problems = problems
        return problems

    async def run(self, api: ApiSession) -> None:
        while True:
            try:
                await self.check(api)
            except Exception:  # an unreadable peering object must not stop the operator
                log.warning("cannot read the peering object %s", self.name, exc_info=True)
            await asyncio.sleep(self.interval)
