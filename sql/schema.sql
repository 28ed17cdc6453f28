-- The tenant's namespace in RisingWave: every object of the tenant lives here.
CREATE SCHEMA IF NOT EXISTS {schema}
