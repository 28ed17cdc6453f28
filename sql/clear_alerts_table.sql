-- Runs on the PostgreSQL alert database (not RisingWave) between dropping and recreating the
-- JDBC sink: a new sink only upserts the alerts open now, so rows an earlier sink left behind
-- would stay forever.
DELETE FROM {table}
