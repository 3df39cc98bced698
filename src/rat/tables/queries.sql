-- name: list_table_metadata :many
-- Descriptions and owners of every table that has any.
SELECT namespace, layer, name, description, owner, column_descriptions
FROM table_metadata;

-- name: get_table_metadata :one
-- Description, owner and column descriptions of one table.
SELECT namespace, layer, name, description, owner, column_descriptions
FROM table_metadata WHERE namespace = $1 AND layer = $2 AND name = $3;

-- name: upsert_table_metadata :exec
-- Set description, owner and column descriptions; NULL arguments keep what is stored.
INSERT INTO table_metadata (namespace, layer, name, description, owner, column_descriptions)
VALUES ($1, $2, $3, COALESCE($4, ''), $5, COALESCE($6::jsonb, '{}'::jsonb))
ON CONFLICT (namespace, layer, name) DO UPDATE
SET description = COALESCE($4, table_metadata.description),
    owner = COALESCE($5, table_metadata.owner),
    column_descriptions = table_metadata.column_descriptions || COALESCE($6::jsonb, '{}'::jsonb),
    updated_at = now();

-- name: list_freshness :many
-- Latest freshness verdict per table.
SELECT namespace, layer, name, status, age_seconds, checked_at FROM table_freshness;

-- name: get_freshness :one
-- Latest freshness verdict of one table.
SELECT namespace, layer, name, status, age_seconds, checked_at FROM table_freshness
WHERE namespace = $1 AND layer = $2 AND name = $3;

-- name: list_producers :many
-- The live pipeline behind each table name, with the column docs of its published config.
SELECT p.namespace, p.layer, p.name, p.description, p.owner, v.config -> 'columns' AS columns
FROM pipelines p
LEFT JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version_number = p.current_version
WHERE p.deleted_at IS NULL AND ($1::text IS NULL OR p.namespace = $1);

-- name: get_producer :one
-- The live pipeline that writes one table, with the column docs of its published config.
SELECT p.namespace, p.layer, p.name, p.description, p.owner, v.config -> 'columns' AS columns
FROM pipelines p
LEFT JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version_number = p.current_version
WHERE p.deleted_at IS NULL AND p.namespace = $1 AND p.layer = $2 AND p.name = $3;
