-- A rotated credential replaces the stored value in place; the connectors that reference the
-- secret pick the new value up without being recreated.
ALTER SECRET {secret} WITH (backend = 'meta') AS {value}
