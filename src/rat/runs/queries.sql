-- name: insert_run :one
-- Enqueue a pending run for a pipeline.
INSERT INTO runs (id, pipeline_id, version_number, trigger, schedule_id, scheduled_for,
                  max_attempts, request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, status;

-- name: notify_runs :exec
-- Wake dispatchers (in this and other processes) after enqueueing.
SELECT pg_notify('rat_runs', $1::text);

-- name: claim_next_run :one
-- Move the oldest due run to running for this worker. Parked retries whose time has come go first;
-- pipelines that already have a running run are skipped (one running run per pipeline).
UPDATE runs r
SET status = 'running', phase = 'load', worker_id = $1, lease_token = $2,
    lease_expires_at = now() + make_interval(secs => $3), heartbeat_at = now(),
    started_at = COALESCE(r.started_at, now()), attempt = r.attempt + 1, retry_at = NULL
WHERE r.id = (
    SELECT c.id FROM runs c
    WHERE (c.status = 'pending'
           AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.pipeline_id = c.pipeline_id
                           AND x.status = 'running'))
       OR (c.status = 'running' AND c.phase = 'retry_wait' AND c.retry_at <= now())
    ORDER BY (c.status = 'running') DESC, c.created_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING r.id, r.pipeline_id, r.version_number, r.attempt, r.max_attempts, r.trigger,
          r.lease_token, r.started_at, r.created_at;

-- name: renew_lease :execrows
-- Heartbeat: extend the lease while the worker is alive (0 rows: fenced out or finished).
UPDATE runs SET lease_expires_at = now() + make_interval(secs => $3), heartbeat_at = now()
WHERE id = $1 AND lease_token = $2 AND status = 'running';

-- name: set_phase :exec
-- Record the phase the worker entered.
UPDATE runs SET phase = $3 WHERE id = $1 AND lease_token = $2 AND status = 'running';

-- name: lock_for_publish :one
-- Hold the run row while publishing; NULL when the lease was lost or the run was cancelled.
SELECT id FROM runs
WHERE id = $1 AND lease_token = $2 AND status = 'running' AND NOT cancel_requested
FOR UPDATE;

-- name: finish_run :execrows
-- Terminal state, fenced by the lease token (0 rows: cancelled or reaped meanwhile). The clock,
-- not the transaction start: a publish transaction can last seconds.
UPDATE runs
SET status = $3, phase = NULL, finished_at = clock_timestamp(),
    duration_ms = (EXTRACT(EPOCH FROM (clock_timestamp() - COALESCE(started_at, created_at))) * 1000)::bigint,
    rows_written = $4, snapshot_id = $5, error = $6, phase_profiles = $7, quality_summary = $8,
    landing_files = $9, lease_token = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_token = $2 AND status = 'running';

-- name: park_for_retry :execrows
-- Keep the run running but release its worker until retry_at.
UPDATE runs
SET phase = 'retry_wait', retry_at = now() + make_interval(secs => $3), error = $4,
    phase_profiles = $5, lease_token = NULL, lease_expires_at = NULL, worker_id = NULL
WHERE id = $1 AND lease_token = $2 AND status = 'running';

-- name: cancel_run :one
-- Cancel a pending or running run; NULL when it is already terminal.
UPDATE runs
SET status = 'cancelled', cancel_requested = true, phase = NULL, finished_at = now(),
    duration_ms = (EXTRACT(EPOCH FROM (now() - COALESCE(started_at, created_at))) * 1000)::bigint,
    lease_token = NULL, lease_expires_at = NULL
WHERE id = $1 AND status IN ('pending', 'running')
RETURNING id, pipeline_id, worker_id;

-- name: cancel_pipeline_runs :many
-- Cancel every active run of a pipeline (pipeline deleted).
UPDATE runs
SET status = 'cancelled', cancel_requested = true, phase = NULL, finished_at = now(),
    lease_token = NULL, lease_expires_at = NULL, error = $2
WHERE pipeline_id = $1 AND status IN ('pending', 'running')
RETURNING id;

-- name: get_run :one
-- One run with its pipeline's natural key.
SELECT r.id, r.pipeline_id, p.namespace, p.layer, p.name AS pipeline, r.status, r.phase,
       r.trigger, r.version_number, r.attempt, r.max_attempts, r.started_at, r.finished_at,
       r.duration_ms, r.rows_written, r.snapshot_id, r.error, r.created_at, r.phase_profiles,
       r.quality_summary, r.scheduled_for, r.request_id, r.lease_token, r.landing_files,
       r.schedule_id
FROM runs r JOIN pipelines p ON p.id = r.pipeline_id
WHERE r.id = $1;

-- name: list_runs :many
-- Filtered, sorted page of runs; $10 picks the sort key; $12/$13 (readable namespaces /
-- pipeline ids) narrow it for a principal, NULL = everything.
SELECT r.id, r.pipeline_id, p.namespace, p.layer, p.name AS pipeline, r.status, r.phase,
       r.trigger, r.version_number, r.attempt, r.max_attempts, r.started_at, r.finished_at,
       r.duration_ms, r.rows_written, r.snapshot_id, r.error, r.created_at,
       count(*) OVER () AS total
FROM runs r JOIN pipelines p ON p.id = r.pipeline_id
WHERE ($1::text IS NULL OR p.namespace = $1)
  AND ($2::text IS NULL OR p.layer = $2)
  AND ($3::text IS NULL OR p.name = $3)
  AND ($4::text[] IS NULL OR r.status = ANY($4))
  AND ($5::text IS NULL OR r.trigger LIKE $5 || '%')
  AND ($6::timestamptz IS NULL OR r.started_at >= $6)
  AND ($7::timestamptz IS NULL OR r.started_at < $7)
  AND ($11::uuid IS NULL OR r.pipeline_id = $11)
  AND ($12::text[] IS NULL OR p.namespace = ANY($12) OR p.id::text = ANY($13::text[]))
ORDER BY
  CASE WHEN $10 = 'created_at' THEN r.created_at END ASC,
  CASE WHEN $10 = '-created_at' THEN r.created_at END DESC,
  CASE WHEN $10 = 'started_at' THEN r.started_at END ASC NULLS LAST,
  CASE WHEN $10 = '-started_at' THEN r.started_at END DESC NULLS LAST,
  CASE WHEN $10 = 'finished_at' THEN r.finished_at END ASC NULLS LAST,
  CASE WHEN $10 = '-finished_at' THEN r.finished_at END DESC NULLS LAST,
  CASE WHEN $10 = 'duration_ms' THEN r.duration_ms END ASC NULLS LAST,
  CASE WHEN $10 = '-duration_ms' THEN r.duration_ms END DESC NULLS LAST,
  CASE WHEN $10 = 'status' THEN r.status END ASC,
  CASE WHEN $10 = '-status' THEN r.status END DESC,
  r.created_at DESC, r.id
LIMIT $8 OFFSET $9;

-- name: count_runs :val
-- Total matches for list_runs when the requested page is empty.
SELECT count(*)
FROM runs r JOIN pipelines p ON p.id = r.pipeline_id
WHERE ($1::text IS NULL OR p.namespace = $1)
  AND ($2::text IS NULL OR p.layer = $2)
  AND ($3::text IS NULL OR p.name = $3)
  AND ($4::text[] IS NULL OR r.status = ANY($4))
  AND ($5::text IS NULL OR r.trigger LIKE $5 || '%')
  AND ($6::timestamptz IS NULL OR r.started_at >= $6)
  AND ($7::timestamptz IS NULL OR r.started_at < $7)
  AND ($8::uuid IS NULL OR r.pipeline_id = $8)
  AND ($9::text[] IS NULL OR p.namespace = ANY($9) OR p.id::text = ANY($10::text[]));

-- name: insert_logs :exec
-- Append one log record (used with executemany for a batch). A terminal run's log is closed:
-- a record written more than a second after the run ended comes from an attempt that lost the
-- run (fenced out, reaped, cancelled) and is dropped; the second admits the concluding lines
-- (the cancel notice, what a dying worker flushed on its way out).
INSERT INTO run_logs (run_id, seq, ts, level, message)
SELECT r.id, $2::int, $3::timestamptz, $4::text, $5::text FROM runs r
WHERE r.id = $1
  AND (r.status IN ('pending', 'running') OR $3::timestamptz <= r.finished_at + interval '1 second')
ON CONFLICT (run_id, seq) DO NOTHING;

-- name: next_log_seq :val
-- The next sequence number for a run's log (logs continue across attempts).
SELECT COALESCE(max(seq), 0) + 1 FROM run_logs WHERE run_id = $1;

-- name: list_logs :many
-- Log records after a sequence number at or above a level.
SELECT seq, ts AS timestamp, level, message FROM run_logs
WHERE run_id = $1 AND seq > $2 AND level = ANY($3)
ORDER BY seq
LIMIT $4;

-- name: expired_running_runs :many
-- Running runs whose lease expired: their worker or whole server died.
SELECT r.id, r.pipeline_id, p.namespace, p.layer, p.name
FROM runs r JOIN pipelines p ON p.id = r.pipeline_id
WHERE r.status = 'running' AND r.phase IS DISTINCT FROM 'retry_wait'
  AND r.lease_expires_at < now();

-- name: reconcile_run :execrows
-- Settle an orphaned running run after a crash (only if its lease is still expired) and say why
-- in its log ($5, $6: level and message of that last record).
WITH settled AS (
    UPDATE runs
    SET status = $2, phase = NULL, finished_at = now(), snapshot_id = $3, error = $4,
        duration_ms = (EXTRACT(EPOCH FROM (now() - COALESCE(started_at, created_at))) * 1000)::bigint,
        lease_token = NULL, lease_expires_at = NULL
    WHERE id = $1 AND status = 'running' AND lease_expires_at < now()
    RETURNING id
)
INSERT INTO run_logs (run_id, seq, ts, level, message)
SELECT s.id, (SELECT COALESCE(max(l.seq), 0) + 1 FROM run_logs l WHERE l.run_id = s.id), now(),
       $5::text, $6::text
FROM settled s
ON CONFLICT (run_id, seq) DO NOTHING;

-- name: active_run_for_pipeline :val
-- True when the pipeline has a pending or running run.
SELECT EXISTS (SELECT 1 FROM runs WHERE pipeline_id = $1 AND status IN ('pending', 'running'));

-- name: set_max_attempts :exec
-- Attempts allowed by the executed version's max_retries (known once its files are loaded).
UPDATE runs SET max_attempts = $3 WHERE id = $1 AND lease_token = $2 AND status = 'running';

-- name: requeue_run :execrows
-- Graceful shutdown ran out of time: void the attempt and put the run back in the queue.
UPDATE runs
SET status = 'pending', phase = NULL, attempt = GREATEST(attempt - 1, 0), worker_id = NULL,
    lease_token = NULL, lease_expires_at = NULL, heartbeat_at = NULL, retry_at = NULL
WHERE id = $1 AND lease_token = $2 AND status = 'running';

-- name: run_timeout :one
-- The stuck-run timeout of a run (pipeline override, else system setting, else $2 minutes) and
-- the seconds left until it, counted from the run's first start as the reaper counts.
SELECT x.minutes,
       EXTRACT(EPOCH FROM (COALESCE(r.started_at, r.created_at)
                           + make_interval(mins => x.minutes) - now()))::float8 AS seconds_left
FROM runs r
JOIN pipelines p ON p.id = r.pipeline_id
CROSS JOIN LATERAL (
    SELECT COALESCE((p.retention_config->>'stuck_run_timeout_minutes')::int,
                    (SELECT (s.value->>'stuck_run_timeout_minutes')::int
                     FROM platform_settings s WHERE s.key = 'retention'),
                    $2::int) AS minutes
) x
WHERE r.id = $1;
