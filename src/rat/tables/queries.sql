-- name: list_table_metadata :many
-- Descriptions and owners of every table that has any.
SELECT namespace, layer, name, description, owner, column_descriptions
FROM table_metadata;

-- name: list_freshness :many
-- Latest freshness verdict per table.
SELECT namespace, layer, name, status, age_seconds, checked_at FROM table_freshness;
