-- name: run_status_counts :many
-- Runs per status for /metrics.
SELECT status, count(*) AS n FROM runs GROUP BY status;

-- name: queue_state :one
-- Queue depth for /metrics: pending runs, parked retries, and how long the oldest has waited.
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'running' AND phase = 'retry_wait') AS retry_wait,
       COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status = 'pending')),
                0)::float8 AS oldest_pending_seconds
FROM runs WHERE status IN ('pending', 'running');

-- name: scheduler_lag :val
-- How late the most overdue enabled schedule is (0 when none is due).
SELECT COALESCE(EXTRACT(EPOCH FROM max(now() - next_run_at)), 0)::float8
FROM schedules WHERE enabled AND next_run_at < now();

-- name: fence_try_deletions :val
-- Deleter's side of the backup fence: true when no backup holds it; held until the transaction ends.
SELECT pg_try_advisory_xact_lock($1);

-- name: fence_hold_backup :exec
-- Backup's side: a shared session lock; waits for a deletion window already in progress.
SELECT pg_advisory_lock_shared($1);

-- name: fence_release_backup :exec
-- End of the backup's storage copy.
SELECT pg_advisory_unlock_shared($1);

-- name: public_tables :val
-- How many tables the target database's public schema has.
SELECT count(*) FROM pg_tables WHERE schemaname = 'public';

-- name: rat_rows :val
-- Rows that make a migrated RAT database "not empty" (pipelines, runs, landing zones).
SELECT (SELECT count(*) FROM pipelines) + (SELECT count(*) FROM runs)
       + (SELECT count(*) FROM landing_zones);

-- name: catalog_present :val
-- True when the SQL catalog's tables exist (created by pyiceberg on first use).
SELECT to_regclass('public.iceberg_tables') IS NOT NULL;

-- name: other_rat_sessions :val
-- Connections of a running RAT server (its pool names itself 'rat').
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'rat';

-- name: drop_public_schema :exec
-- restore --force: drop everything in the public schema ...
DROP SCHEMA public CASCADE;

-- name: create_public_schema :exec
-- ... and start again from an empty one.
CREATE SCHEMA public;

-- name: relocate_run_landing_files :execrows
-- The landing-file locations recorded on runs.
UPDATE runs SET landing_files = replace(landing_files::text, $1, $2)::jsonb
WHERE strpos(landing_files::text, $1) > 0;

-- name: rat_tables :val
-- How many of the tables `rat_rows` counts exist (3 in a migrated RAT database).
SELECT count(*) FROM pg_tables
WHERE schemaname = 'public' AND tablename IN ('pipelines', 'runs', 'landing_zones');
