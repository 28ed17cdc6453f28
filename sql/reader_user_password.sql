-- A rotated password for the tenant's read-only user, changed in place.
ALTER USER {reader_user} WITH PASSWORD {password}
