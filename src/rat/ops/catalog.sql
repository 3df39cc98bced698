-- Statements on the SQL catalog's own tables (iceberg_tables, iceberg_namespace_properties).
-- pyiceberg creates those tables on first use, not RAT's migrations, so these queries live apart
-- from queries.sql (whose statements are all prepared against a freshly migrated database).

-- name: relocate_tables :execrows
-- Point catalog rows at the restored storage root ($1 old root prefix, $2 new).
UPDATE iceberg_tables
SET metadata_location = $2 || substr(metadata_location, length($1) + 1),
    previous_metadata_location = CASE
        WHEN starts_with(previous_metadata_location, $1)
        THEN $2 || substr(previous_metadata_location, length($1) + 1)
        ELSE previous_metadata_location END
WHERE starts_with(metadata_location, $1);

-- name: relocate_namespace_properties :execrows
-- Namespace locations under the old storage root.
UPDATE iceberg_namespace_properties
SET property_value = $2 || substr(property_value, length($1) + 1)
WHERE starts_with(property_value, $1);
