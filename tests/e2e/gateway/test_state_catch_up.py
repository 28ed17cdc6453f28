"""Stations connecting at once share the state topic's end-offset query, and each still sees
what was written before it connected."""

from __future__ import annotations

import asyncio
import uuid

from charging_analytics.gateway.config import StateSpec
from charging_analytics.gateway.delivery import Publisher
from charging_analytics.gateway.state import StateStore


def test_concurrent_catch_ups_share_one_query_and_see_earlier_writes(kafka_broker: str) -> None:
    spec = StateSpec.model_validate(
        {"bootstrapServers": [kafka_broker], "topic": f"gw-state-{uuid.uuid4().hex[:8]}", "partitions": 2}
    )
    conf = {"bootstrap.servers": kafka_broker}
    writer_publisher, reader_publisher = (Publisher(conf, delivery_timeout_s=10) for _ in range(2))
    writer, reader = StateStore(spec, writer_publisher), StateStore(spec, reader_publisher)
    writer.start(60)
    reader.start(60)
    queries = 0
    real = reader._end_offsets

    def counted(timeout: float = 5.0) -> dict[int, int]:
        nonlocal queries
        queries += 1
        return real(timeout)

    reader._end_offsets = counted  # type: ignore[method-assign]

    async def reconnect_burst() -> list[object]:
        # Another replica stores state for 20 stations, then all 20 connect here at once.
        await asyncio.gather(*(writer.put(f"acme/ST-{i}/v16/transactions", {"n": i}) for i in range(20)))
        await asyncio.gather(*(reader.catch_up() for _ in range(20)))
        return [reader.get(f"acme/ST-{i}/v16/transactions") for i in range(20)]

    try:
        assert asyncio.run(reconnect_burst()) == [{"n": i} for i in range(20)]
        assert queries == 1
    finally:
        for store in (writer, reader):
            store.close()
        for publisher in (writer_publisher, reader_publisher):
            publisher.close()
