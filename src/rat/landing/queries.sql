-- name: list_zones :many
-- Filtered page of zones with the count and size of their unprocessed files; $5/$6 (readable
-- namespaces / zone ids) narrow it for a principal, NULL = everything.
SELECT z.id, z.namespace, z.name, z.description, z.owner, z.expected_schema,
       z.processed_max_age_days, z.auto_purge, z.created_at, z.updated_at,
       COALESCE(f.file_count, 0) AS file_count, COALESCE(f.total_bytes, 0) AS total_bytes,
       count(*) OVER () AS total
FROM landing_zones z
LEFT JOIN LATERAL (
    SELECT count(*) AS file_count, sum(size_bytes)::bigint AS total_bytes
    FROM landing_files WHERE zone_id = z.id AND processed_run_id IS NULL
) f ON true
WHERE ($1::text IS NULL OR z.namespace = $1)
  AND ($2::text IS NULL OR z.name ILIKE '%' || $2 || '%' OR z.description ILIKE '%' || $2 || '%')
  AND ($5::text[] IS NULL OR z.namespace = ANY($5) OR z.id::text = ANY($6::text[]))
ORDER BY z.namespace, z.name
LIMIT $3 OFFSET $4;

-- name: count_zones :val
-- Total matches for list_zones when the requested page is empty.
SELECT count(*) FROM landing_zones z
WHERE ($1::text IS NULL OR z.namespace = $1)
  AND ($2::text IS NULL OR z.name ILIKE '%' || $2 || '%' OR z.description ILIKE '%' || $2 || '%')
  AND ($3::text[] IS NULL OR z.namespace = ANY($3) OR z.id::text = ANY($4::text[]));

-- name: get_zone :one
-- One zone by natural key, with its unprocessed file totals.
SELECT z.id, z.namespace, z.name, z.description, z.owner, z.expected_schema,
       z.processed_max_age_days, z.auto_purge, z.created_at, z.updated_at,
       (SELECT count(*) FROM landing_files WHERE zone_id = z.id AND processed_run_id IS NULL)
           AS file_count,
       (SELECT COALESCE(sum(size_bytes), 0)::bigint FROM landing_files
        WHERE zone_id = z.id AND processed_run_id IS NULL) AS total_bytes
FROM landing_zones z WHERE z.namespace = $1 AND z.name = $2;

-- name: insert_zone :one
-- Create a zone; the unique (namespace, name) constraint refuses a duplicate.
INSERT INTO landing_zones (id, namespace, name, description, expected_schema, owner)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id;

-- name: update_zone :execrows
-- Change descriptive fields; NULL arguments keep the current value.
UPDATE landing_zones
SET description = COALESCE($2, description), owner = COALESCE($3, owner),
    expected_schema = COALESCE($4, expected_schema), updated_at = now()
WHERE id = $1;

-- name: set_lifecycle :exec
-- Replace the zone's lifecycle settings.
UPDATE landing_zones SET processed_max_age_days = $2, auto_purge = $3, updated_at = now()
WHERE id = $1;

-- name: delete_zone :execrows
-- Remove a zone; its file rows go with it (ON DELETE CASCADE).
DELETE FROM landing_zones WHERE id = $1;

-- name: delete_zone_triggers :execrows
-- Triggers that watch a deleted zone can never fire again, so they go with it.
DELETE FROM pipeline_triggers
WHERE type IN ('landing_zone_upload', 'file_pattern')
  AND config->>'namespace' = $1 AND config->>'zone_name' = $2;

-- name: insert_file :one
-- Record an uploaded file once its object is complete.
INSERT INTO landing_files (id, zone_id, filename, s3_path, size_bytes, content_type, uploaded_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, zone_id, filename, s3_path, size_bytes, content_type, uploaded_by, uploaded_at,
          processed_run_id, processed_at;

-- name: path_taken :val
-- True when a file row already uses this storage path.
SELECT EXISTS (SELECT 1 FROM landing_files WHERE s3_path = $1);

-- name: list_files :many
-- A zone's files, newest first; processed ones only when asked.
SELECT id, zone_id, filename, s3_path, size_bytes, content_type, uploaded_by, uploaded_at,
       processed_run_id, processed_at, count(*) OVER () AS total
FROM landing_files
WHERE zone_id = $1 AND ($2::bool OR processed_run_id IS NULL)
ORDER BY uploaded_at DESC, id
LIMIT $3 OFFSET $4;

-- name: count_files :val
-- Total matches for list_files when the requested page is empty.
SELECT count(*) FROM landing_files WHERE zone_id = $1 AND ($2::bool OR processed_run_id IS NULL);

-- name: get_file :one
-- One file of a zone.
SELECT id, zone_id, filename, s3_path, size_bytes, content_type, uploaded_by, uploaded_at,
       processed_run_id, processed_at
FROM landing_files WHERE id = $1 AND zone_id = $2;

-- name: delete_file :execrows
-- Forget one file.
DELETE FROM landing_files WHERE id = $1;

-- name: mark_processed :exec
-- After archiving: the file now lives under _processed/{run_id}/.
UPDATE landing_files
SET processed_run_id = $2, processed_at = now(), s3_path = $3
WHERE s3_path = $1 AND processed_run_id IS NULL;

-- name: run_archive_config :one
-- The effective config of the version a run executed (NULL for a draft run).
SELECT v.config FROM pipeline_versions v
WHERE v.pipeline_id = $1 AND v.version_number = $2;

-- name: processed_files :many
-- A zone's archived files with the time they were archived.
SELECT s3_path, processed_at FROM landing_files
WHERE zone_id = $1 AND processed_run_id IS NOT NULL;

-- name: purgeable_zones :many
-- Zones whose processed files the reaper deletes.
SELECT id, namespace, name, processed_max_age_days FROM landing_zones
WHERE auto_purge AND processed_max_age_days IS NOT NULL;

-- name: forget_files :execrows
-- Drop the rows of purged processed files.
DELETE FROM landing_files WHERE s3_path = ANY($1::text[]);
