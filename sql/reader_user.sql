-- The tenant's read-only user for dashboards (optional). RisingWave has no IF NOT EXISTS for users,
-- so the planner creates it only when the catalog does not list it; its grants follow every
-- rebuild of the tenant's views (GRANT ... ON ALL ... covers only the objects that exist).
CREATE USER {reader_user} WITH NOSUPERUSER NOCREATEDB NOCREATEUSER LOGIN PASSWORD {password}
