-- name: insert_pipeline :one
-- Create a pipeline row; the partial unique index refuses a live duplicate name.
INSERT INTO pipelines (id, namespace, layer, name, type, description, owner)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id;

-- name: get_pipeline :one
-- A live pipeline by natural key, with its latest run.
SELECT p.id, p.namespace, p.layer, p.name, p.type, p.description, p.owner, p.published_versions,
       p.published_at, p.current_version, p.draft_dirty, p.max_versions, p.retention_config,
       p.created_at, p.updated_at, v.config,
       lr.id AS last_run_id, lr.status AS last_run_status, lr.started_at AS last_run_started_at,
       lr.finished_at AS last_run_finished_at, lr.duration_ms AS last_run_duration_ms
FROM pipelines p
LEFT JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version_number = p.current_version
LEFT JOIN LATERAL (
    SELECT r.id, r.status, r.started_at, r.finished_at, r.duration_ms
    FROM runs r WHERE r.pipeline_id = p.id ORDER BY r.created_at DESC LIMIT 1
) lr ON true
WHERE p.namespace = $1 AND p.layer = $2 AND p.name = $3 AND p.deleted_at IS NULL;

-- name: get_pipeline_by_id :one
-- A pipeline (live or soft-deleted) by id.
SELECT p.id, p.namespace, p.layer, p.name, p.type, p.description, p.owner, p.published_versions,
       p.published_at, p.current_version, p.draft_dirty, p.max_versions, p.retention_config,
       p.created_at, p.updated_at, v.config,
       NULL::uuid AS last_run_id, NULL::text AS last_run_status,
       NULL::timestamptz AS last_run_started_at, NULL::timestamptz AS last_run_finished_at,
       NULL::bigint AS last_run_duration_ms
FROM pipelines p
LEFT JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version_number = p.current_version
WHERE p.id = $1;

-- name: list_pipelines :many
-- Filtered, sorted page of live pipelines with their latest run; sort key chosen by $5;
-- $7/$8 (readable namespaces / pipeline ids) narrow it for a principal, NULL = everything.
SELECT p.id, p.namespace, p.layer, p.name, p.type, p.description, p.owner, p.published_versions,
       p.published_at, p.current_version, p.draft_dirty, p.max_versions, p.retention_config,
       p.created_at, p.updated_at, v.config,
       lr.id AS last_run_id, lr.status AS last_run_status, lr.started_at AS last_run_started_at,
       lr.finished_at AS last_run_finished_at, lr.duration_ms AS last_run_duration_ms,
       count(*) OVER () AS total
FROM pipelines p
LEFT JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version_number = p.current_version
LEFT JOIN LATERAL (
    SELECT r.id, r.status, r.started_at, r.finished_at, r.duration_ms
    FROM runs r WHERE r.pipeline_id = p.id ORDER BY r.created_at DESC LIMIT 1
) lr ON true
WHERE p.deleted_at IS NULL
  AND ($1::text IS NULL OR p.namespace = $1)
  AND ($2::text IS NULL OR p.layer = $2)
  AND ($3::text IS NULL OR p.name ILIKE '%' || $3 || '%' OR p.description ILIKE '%' || $3 || '%')
  AND ($7::text[] IS NULL OR p.namespace = ANY($7) OR p.id::text = ANY($8::text[]))
ORDER BY
  CASE WHEN $5 = 'name' THEN p.name END ASC,
  CASE WHEN $5 = '-name' THEN p.name END DESC,
  CASE WHEN $5 = 'namespace' THEN p.namespace END ASC,
  CASE WHEN $5 = '-namespace' THEN p.namespace END DESC,
  CASE WHEN $5 = 'layer' THEN p.layer END ASC,
  CASE WHEN $5 = '-layer' THEN p.layer END DESC,
  CASE WHEN $5 = 'created_at' THEN p.created_at END ASC,
  CASE WHEN $5 = '-created_at' THEN p.created_at END DESC,
  CASE WHEN $5 = 'updated_at' THEN p.updated_at END ASC,
  CASE WHEN $5 = '-updated_at' THEN p.updated_at END DESC,
  CASE WHEN $5 = 'published_at' THEN p.published_at END ASC NULLS LAST,
  CASE WHEN $5 = '-published_at' THEN p.published_at END DESC NULLS LAST,
  p.created_at DESC, p.id
LIMIT $4 OFFSET $6;

-- name: update_pipeline :one
-- Change descriptive fields; NULL arguments keep the current value.
UPDATE pipelines
SET description = COALESCE($2, description), type = COALESCE($3, type),
    owner = COALESCE($4, owner), updated_at = now()
WHERE id = $1 AND deleted_at IS NULL
RETURNING id;

-- name: set_draft_dirty :exec
-- Record whether the draft differs from the published version.
UPDATE pipelines SET draft_dirty = $2, updated_at = now() WHERE id = $1;

-- name: soft_delete_pipeline :execrows
-- Hide a pipeline; its name is free again at once, its data is purged later by the reaper.
UPDATE pipelines SET deleted_at = now(), drop_table_on_purge = $2, updated_at = now()
WHERE id = $1 AND deleted_at IS NULL;

-- name: disable_pipeline_schedules :exec
-- Stop the schedules of a deleted pipeline.
UPDATE schedules SET enabled = false, next_run_at = NULL, updated_at = now() WHERE pipeline_id = $1;

-- name: disable_pipeline_triggers :exec
-- Stop the triggers of a deleted pipeline.
UPDATE pipeline_triggers SET enabled = false, updated_at = now() WHERE pipeline_id = $1;

-- name: namespace_exists :val
-- True when the namespace exists.
SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = $1);

-- name: live_pipeline_keys :many
-- Natural keys of every live pipeline (for the files API and lineage).
SELECT id, namespace, layer, name, type FROM pipelines WHERE deleted_at IS NULL
  AND ($1::text IS NULL OR namespace = $1);

-- name: get_version :one
-- One version of a pipeline.
SELECT id, pipeline_id, version_number, message, published_versions, config, data_snapshot_id,
       created_by, created_at
FROM pipeline_versions WHERE pipeline_id = $1 AND version_number = $2;

-- name: lock_pipeline :one
-- Serialize publishes and rollbacks of one pipeline; the next version number comes from here.
SELECT p.id, p.current_version, p.max_versions,
       COALESCE((SELECT max(v.version_number) FROM pipeline_versions v WHERE v.pipeline_id = p.id), 0)
         AS last_version
FROM pipelines p WHERE p.id = $1 AND p.deleted_at IS NULL
FOR UPDATE;

-- name: insert_version :exec
-- Create an immutable version (file map, message, effective config).
INSERT INTO pipeline_versions (id, pipeline_id, version_number, message, published_versions, config,
                               data_snapshot_id, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: set_current_version :exec
-- Point the pipeline at a version; draft_dirty as computed by the caller.
UPDATE pipelines
SET current_version = $2, published_versions = $3, published_at = now(), draft_dirty = $4,
    updated_at = now()
WHERE id = $1;

-- name: prune_versions :many
-- Keep the newest $2 versions (never the current one); return the numbers removed.
DELETE FROM pipeline_versions v
WHERE v.pipeline_id = $1 AND v.version_number <> $3
  AND v.version_number NOT IN (
      SELECT k.version_number FROM pipeline_versions k WHERE k.pipeline_id = $1
      ORDER BY k.version_number DESC LIMIT $2)
RETURNING v.version_number;

-- name: list_versions :many
-- A page of versions, newest first, with the total count.
SELECT id, pipeline_id, version_number, message, published_versions, data_snapshot_id, created_by,
       created_at, count(*) OVER () AS total
FROM pipeline_versions WHERE pipeline_id = $1
ORDER BY version_number DESC
LIMIT $2 OFFSET $3;

-- name: count_versions :val
-- Number of versions of a pipeline.
SELECT count(*) FROM pipeline_versions WHERE pipeline_id = $1;

-- name: set_version_snapshot :exec
-- Remember the table snapshot a successful run of this version published.
UPDATE pipeline_versions SET data_snapshot_id = $3 WHERE pipeline_id = $1 AND version_number = $2;

-- name: pipeline_has_active_run :val
-- True when a run of the pipeline is pending or running (rollback with data restore refuses).
SELECT EXISTS (SELECT 1 FROM runs WHERE pipeline_id = $1 AND status IN ('pending', 'running'));

-- name: get_setting :val
-- A platform setting (jsonb) by key; NULL when never set.
SELECT value FROM platform_settings WHERE key = $1;

-- name: set_retention_config :exec
-- Per-pipeline retention overrides (NULL clears them).
UPDATE pipelines SET retention_config = $2, updated_at = now() WHERE id = $1;
