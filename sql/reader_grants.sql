-- Read access for the tenant's read-only user. GRANT ... ON ALL ... IN SCHEMA covers only the
-- objects that exist when it runs, so the planner repeats these after every rebuild of the views.
GRANT USAGE ON SCHEMA {schema} TO {reader_user};
GRANT SELECT ON ALL MATERIALIZED VIEWS IN SCHEMA {schema} TO {reader_user};
GRANT SELECT ON ALL VIEWS IN SCHEMA {schema} TO {reader_user}
