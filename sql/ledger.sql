-- The operator's ledger: what it applied, per tenant and object. RisingWave re-prints stored
-- definitions, so drift and change detection compare these hashes, never SQL text.
CREATE TABLE IF NOT EXISTS {ledger} (
    tenant VARCHAR,
    object_name VARCHAR,
    kind VARCHAR,
    definition_hash VARCHAR,
    depends_on VARCHAR,
    applied_at TIMESTAMPTZ,
    PRIMARY KEY (tenant, object_name)
)
