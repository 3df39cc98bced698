-- name: list_namespaces :many
-- A page of namespaces by name (only those in $3 when it is not NULL), with the total count.
SELECT name, description, created_by, created_at, count(*) OVER () AS total
FROM namespaces WHERE $3::text[] IS NULL OR name = ANY($3)
ORDER BY name LIMIT $1 OFFSET $2;

-- name: count_namespaces :val
-- How many namespaces exist (only those in $1 when it is not NULL).
SELECT count(*) FROM namespaces WHERE $1::text[] IS NULL OR name = ANY($1);

-- name: get_namespace :one
-- One namespace by name.
SELECT name, description, created_by, created_at FROM namespaces WHERE name = $1;

-- name: insert_namespace :one
-- Create a namespace; nothing is returned when the name is taken.
INSERT INTO namespaces (name, description, created_by) VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING
RETURNING name, description, created_by, created_at;

-- name: update_namespace :execrows
-- Change a namespace's description.
UPDATE namespaces SET description = $2 WHERE name = $1;

-- name: count_zones :val
-- Landing zones in a namespace.
SELECT count(*) FROM landing_zones WHERE namespace = $1;

-- name: namespace_pipeline_ids :many
-- Every pipeline row (live or soft-deleted) in a namespace.
SELECT id FROM pipelines WHERE namespace = $1;

-- name: delete_zone_triggers :exec
-- Triggers anywhere that watch a zone of the namespace being deleted.
DELETE FROM pipeline_triggers
WHERE type IN ('landing_zone_upload', 'file_pattern') AND config ->> 'namespace' = $1;

-- name: delete_zones :exec
-- The namespace's landing zones (their file rows cascade).
DELETE FROM landing_zones WHERE namespace = $1;

-- name: delete_table_rows :exec
-- Table descriptions and freshness verdicts of the namespace.
WITH m AS (DELETE FROM table_metadata WHERE namespace = $1)
DELETE FROM table_freshness WHERE namespace = $1;

-- name: delete_pipelines :exec
-- The namespace's pipeline rows; versions, runs, logs, results, schedules, triggers cascade.
DELETE FROM pipelines WHERE namespace = $1;

-- name: delete_namespace :execrows
-- The namespace row itself (last, once nothing references it).
DELETE FROM namespaces WHERE name = $1;
