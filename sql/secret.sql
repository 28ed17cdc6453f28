-- A credential stored in RisingWave's secret manager (a licensed feature); connectors reference it
-- as SECRET <name>, so the value never appears in a definition.
CREATE SECRET IF NOT EXISTS {secret} WITH (backend = 'meta') AS {value}
