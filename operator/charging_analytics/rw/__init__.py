"""The RisingWave boundary: :mod:`.client` (the only module that talks to RisingWave), plus the
pure version facts (:mod:`.capabilities`) and literal rules (:mod:`.literal`) the core uses.

Nothing is imported here, so the pure core can use ``rw.literal`` without loading the client."""
