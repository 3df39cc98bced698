-- name: get_setting :val
-- One platform setting (jsonb) by key.
SELECT value FROM platform_settings WHERE key = $1;

-- name: put_setting :exec
-- Insert or replace one platform setting.
INSERT INTO platform_settings (key, value, updated_at) VALUES ($1, $2, now())
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now();

-- name: pipeline_overrides :many
-- Pipelines with retention overrides (the reaper's per-table Iceberg settings).
SELECT id, retention_config FROM pipelines WHERE retention_config IS NOT NULL;

-- name: get_status :one
-- The reaper's counters.
SELECT last_run_at, runs_pruned, logs_pruned, quality_pruned, pipelines_purged, runs_failed,
       branches_cleaned, lz_files_cleaned, audit_pruned, snapshots_expired, orphan_files_removed,
       tables_compacted, blobs_deleted, running, updated_at
FROM reaper_status WHERE id = 1;

-- name: begin_pass :one
-- Mark a pass as running unless one is (a flag older than 30 min without progress is stale).
UPDATE reaper_status SET running = true, updated_at = now()
WHERE id = 1 AND (NOT running OR updated_at < now() - interval '30 minutes')
RETURNING id;

-- name: add_counts :exec
-- Add one task's counts ({"runs_pruned": 3, …}) to the counters; also a progress heartbeat.
UPDATE reaper_status SET
    runs_pruned = runs_pruned + COALESCE(($1::jsonb->>'runs_pruned')::bigint, 0),
    logs_pruned = logs_pruned + COALESCE(($1::jsonb->>'logs_pruned')::bigint, 0),
    quality_pruned = quality_pruned + COALESCE(($1::jsonb->>'quality_pruned')::bigint, 0),
    pipelines_purged = pipelines_purged + COALESCE(($1::jsonb->>'pipelines_purged')::bigint, 0),
    runs_failed = runs_failed + COALESCE(($1::jsonb->>'runs_failed')::bigint, 0),
    branches_cleaned = branches_cleaned + COALESCE(($1::jsonb->>'branches_cleaned')::bigint, 0),
    lz_files_cleaned = lz_files_cleaned + COALESCE(($1::jsonb->>'lz_files_cleaned')::bigint, 0),
    audit_pruned = audit_pruned + COALESCE(($1::jsonb->>'audit_pruned')::bigint, 0),
    snapshots_expired = snapshots_expired + COALESCE(($1::jsonb->>'snapshots_expired')::bigint, 0),
    orphan_files_removed = orphan_files_removed
        + COALESCE(($1::jsonb->>'orphan_files_removed')::bigint, 0),
    blobs_deleted = blobs_deleted + COALESCE(($1::jsonb->>'blobs_deleted')::bigint, 0),
    updated_at = now()
WHERE id = 1;

-- name: end_pass :exec
-- A pass finished (or gave up): clear the flag and stamp it.
UPDATE reaper_status SET running = false, last_run_at = now(), updated_at = now() WHERE id = 1;

-- name: fail_stuck_runs :execrows
-- Running longer than the (per-pipeline) stuck timeout: failed; the lease fence stops the worker.
UPDATE runs r
SET status = 'failed', phase = NULL, finished_at = now(),
    duration_ms = (EXTRACT(EPOCH FROM (now() - COALESCE(r.started_at, r.created_at))) * 1000)::bigint,
    error = 'run timed out after ' || x.minutes || ' minutes',
    lease_token = NULL, lease_expires_at = NULL
FROM (SELECT r2.id, COALESCE((p.retention_config->>'stuck_run_timeout_minutes')::int, $1) AS minutes
      FROM runs r2 JOIN pipelines p ON p.id = r2.pipeline_id
      WHERE r2.status = 'running') x
WHERE r.id = x.id AND r.status = 'running'
  AND COALESCE(r.started_at, r.created_at) < now() - make_interval(mins => x.minutes);

-- name: fail_unstarted_runs :execrows
-- Pending for a day: something is badly wrong; fail rather than start a day late.
UPDATE runs SET status = 'failed', finished_at = now(), error = 'never started'
WHERE status = 'pending' AND created_at < now() - interval '24 hours';

-- name: prune_runs :execrows
-- Terminal runs beyond the newest N of their pipeline or older than the age limit.
DELETE FROM runs r USING (
    SELECT r2.id,
           row_number() OVER (PARTITION BY r2.pipeline_id ORDER BY r2.created_at DESC) AS rank,
           COALESCE((p.retention_config->>'runs_max_per_pipeline')::int, $1) AS keep,
           COALESCE((p.retention_config->>'runs_max_age_days')::int, $2) AS days
    FROM runs r2 JOIN pipelines p ON p.id = r2.pipeline_id) x
WHERE r.id = x.id AND r.status IN ('success', 'failed', 'cancelled')
  AND (x.rank > x.keep OR r.created_at < now() - make_interval(days => x.days));

-- name: prune_logs :execrows
-- Log records of finished runs older than the (per-pipeline) age limit.
DELETE FROM run_logs l USING runs r, pipelines p
WHERE l.run_id = r.id AND p.id = r.pipeline_id
  AND r.status IN ('success', 'failed', 'cancelled')
  AND l.ts < now() - make_interval(
      days => COALESCE((p.retention_config->>'logs_max_age_days')::int, $1));

-- name: prune_quality :execrows
-- Quality results beyond the newest N per (pipeline, test).
DELETE FROM quality_results q USING (
    SELECT q2.id,
           row_number() OVER (PARTITION BY q2.pipeline_id, q2.test_name
                              ORDER BY q2.created_at DESC) AS rank,
           COALESCE((p.retention_config->>'quality_results_max_per_test')::int, $1) AS keep
    FROM quality_results q2 JOIN pipelines p ON p.id = q2.pipeline_id) x
WHERE q.id = x.id AND x.rank > x.keep;

-- name: purgeable_pipelines :many
-- Soft-deleted pipelines past the purge period.
SELECT id, namespace, layer, name, drop_table_on_purge FROM pipelines
WHERE deleted_at IS NOT NULL AND deleted_at < now() - make_interval(days => $1);

-- name: purge_pipeline :execrows
-- Remove a soft-deleted pipeline; versions, runs, logs, results, schedules, triggers cascade.
DELETE FROM pipelines WHERE id = $1 AND deleted_at IS NOT NULL;

-- name: runs_by_ids :many
-- Status of the runs behind staging branches.
SELECT id, status, finished_at FROM runs WHERE id = ANY($1::uuid[]);

-- name: referenced_blobs :many
-- Every content id a version or a pipeline still references.
SELECT DISTINCT value AS cid FROM pipeline_versions, jsonb_each_text(published_versions)
UNION
SELECT DISTINCT value FROM pipelines, jsonb_each_text(published_versions);

-- name: prune_audit :execrows
-- Audit entries older than the age limit.
DELETE FROM audit_log WHERE created_at < now() - make_interval(days => $1);
