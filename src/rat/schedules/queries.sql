-- name: list_schedules :many
-- Filtered page of schedules of live pipelines; $5/$6 (readable namespaces / pipeline ids)
-- narrow it for a principal, NULL = everything.
SELECT s.id, s.pipeline_id, p.namespace, p.layer, p.name AS pipeline, s.cron_expr AS cron,
       s.timezone, s.enabled, s.last_run_id, s.last_run_at, s.next_run_at, s.created_at,
       s.updated_at, count(*) OVER () AS total
FROM schedules s JOIN pipelines p ON p.id = s.pipeline_id AND p.deleted_at IS NULL
WHERE ($1::text IS NULL OR p.namespace = $1)
  AND ($2::text IS NULL OR p.layer = $2)
  AND ($3::text IS NULL OR p.name = $3)
  AND ($4::bool IS NULL OR s.enabled = $4)
  AND ($5::text[] IS NULL OR p.namespace = ANY($5) OR p.id::text = ANY($6::text[]))
ORDER BY s.created_at DESC, s.id
LIMIT $7 OFFSET $8;

-- name: count_schedules :val
-- Total matches for list_schedules when the requested page is empty.
SELECT count(*)
FROM schedules s JOIN pipelines p ON p.id = s.pipeline_id AND p.deleted_at IS NULL
WHERE ($1::text IS NULL OR p.namespace = $1)
  AND ($2::text IS NULL OR p.layer = $2)
  AND ($3::text IS NULL OR p.name = $3)
  AND ($4::bool IS NULL OR s.enabled = $4)
  AND ($5::text[] IS NULL OR p.namespace = ANY($5) OR p.id::text = ANY($6::text[]));

-- name: get_schedule :one
-- One schedule of a live pipeline.
SELECT s.id, s.pipeline_id, p.namespace, p.layer, p.name AS pipeline, s.cron_expr AS cron,
       s.timezone, s.enabled, s.last_run_id, s.last_run_at, s.next_run_at, s.created_at,
       s.updated_at
FROM schedules s JOIN pipelines p ON p.id = s.pipeline_id AND p.deleted_at IS NULL
WHERE s.id = $1;

-- name: insert_schedule :exec
-- Create a schedule with its first occurrence.
INSERT INTO schedules (id, pipeline_id, cron_expr, timezone, enabled, next_run_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: update_schedule :exec
-- Replace the editable fields and the recomputed next occurrence.
UPDATE schedules SET cron_expr = $2, timezone = $3, enabled = $4, next_run_at = $5,
    updated_at = now()
WHERE id = $1;

-- name: delete_schedule :execrows
-- Remove a schedule (its runs keep existing, their schedule_id becomes NULL).
DELETE FROM schedules WHERE id = $1;

-- name: due_schedules :many
-- Enabled schedules of live pipelines whose next occurrence has come.
SELECT s.id FROM schedules s JOIN pipelines p ON p.id = s.pipeline_id AND p.deleted_at IS NULL
WHERE s.enabled AND s.next_run_at <= now()
ORDER BY s.next_run_at
LIMIT $1;

-- name: lock_due_schedule :one
-- Take one due schedule for firing; NULL when another tick has it or it is no longer due.
SELECT s.id, s.pipeline_id, s.cron_expr, s.timezone, s.next_run_at
FROM schedules s
WHERE s.id = $1 AND s.enabled AND s.next_run_at <= now()
FOR UPDATE SKIP LOCKED;

-- name: schedule_fired :exec
-- Record a firing (or a skip, with a NULL run) and the next occurrence after now.
UPDATE schedules
SET last_run_id = COALESCE($2, last_run_id),
    last_run_at = CASE WHEN $2::uuid IS NULL THEN last_run_at ELSE now() END,
    next_run_at = $3, updated_at = now()
WHERE id = $1;

-- name: earliest_schedule :val
-- The soonest next occurrence of any enabled schedule (the scheduler sleeps until then).
SELECT min(s.next_run_at)
FROM schedules s JOIN pipelines p ON p.id = s.pipeline_id AND p.deleted_at IS NULL
WHERE s.enabled;

-- name: lock_pipeline_queue :exec
-- Serialise "is there a pending run?" decisions per pipeline until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('rat_queue:' || $1::uuid::text, 0));

-- name: pending_run :val
-- The pipeline's oldest pending run, locked so the dispatcher cannot claim it meanwhile.
SELECT id FROM runs WHERE pipeline_id = $1 AND status = 'pending'
ORDER BY created_at LIMIT 1
FOR UPDATE;

-- name: active_run :val
-- True when the pipeline has a pending or running run.
SELECT EXISTS (SELECT 1 FROM runs WHERE pipeline_id = $1 AND status IN ('pending', 'running'));

-- name: list_triggers :many
-- A pipeline's triggers, oldest first.
SELECT t.id, t.pipeline_id, t.type, t.config, t.enabled, t.cooldown_seconds,
       t.last_triggered_at, t.last_run_id, t.armed_at, t.token_hash, t.created_at, t.updated_at,
       p.namespace, p.layer, p.name AS pipeline, count(*) OVER () AS total
FROM pipeline_triggers t JOIN pipelines p ON p.id = t.pipeline_id
WHERE t.pipeline_id = $1
ORDER BY t.created_at, t.id
LIMIT $2 OFFSET $3;

-- name: count_triggers :val
-- Total for list_triggers when the requested page is empty.
SELECT count(*) FROM pipeline_triggers WHERE pipeline_id = $1;

-- name: get_trigger :one
-- One trigger with its pipeline's natural key.
SELECT t.id, t.pipeline_id, t.type, t.config, t.enabled, t.cooldown_seconds,
       t.last_triggered_at, t.last_run_id, t.armed_at, t.token_hash, t.created_at, t.updated_at,
       p.namespace, p.layer, p.name AS pipeline
FROM pipeline_triggers t JOIN pipelines p ON p.id = t.pipeline_id
WHERE t.id = $1;

-- name: lock_trigger :one
-- One enabled trigger of a live pipeline, locked for firing.
SELECT t.id, t.pipeline_id, t.type, t.config, t.enabled, t.cooldown_seconds,
       t.last_triggered_at, t.last_run_id, t.armed_at, t.token_hash, t.created_at, t.updated_at,
       p.namespace, p.layer, p.name AS pipeline
FROM pipeline_triggers t JOIN pipelines p ON p.id = t.pipeline_id AND p.deleted_at IS NULL
WHERE t.id = $1 AND t.enabled
FOR UPDATE OF t;

-- name: trigger_by_token :one
-- The trigger a webhook token hash belongs to.
SELECT t.id, t.pipeline_id, t.type, t.config, t.enabled, t.cooldown_seconds,
       t.last_triggered_at, t.last_run_id, t.armed_at, t.token_hash, t.created_at, t.updated_at,
       p.namespace, p.layer, p.name AS pipeline
FROM pipeline_triggers t JOIN pipelines p ON p.id = t.pipeline_id AND p.deleted_at IS NULL
WHERE t.token_hash = $1 AND t.type = 'webhook';

-- name: insert_trigger :exec
-- Create a trigger.
INSERT INTO pipeline_triggers (id, pipeline_id, type, config, token_hash, enabled,
                               cooldown_seconds)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: update_trigger :exec
-- Replace a trigger's editable fields.
UPDATE pipeline_triggers SET config = $2, enabled = $3, cooldown_seconds = $4,
    armed_at = CASE WHEN $3 THEN armed_at END, updated_at = now()
WHERE id = $1;

-- name: set_token_hash :exec
-- Rotate a webhook token.
UPDATE pipeline_triggers SET token_hash = $2, updated_at = now() WHERE id = $1;

-- name: delete_trigger :execrows
-- Remove a trigger.
DELETE FROM pipeline_triggers WHERE id = $1 AND pipeline_id = $2;

-- name: dependency_edges :many
-- Upstream → downstream edges of pipeline_success and cron_dependency triggers (cycle checks).
SELECT t.id, t.type, t.config, p.namespace || '.' || p.layer || '.' || p.name AS downstream
FROM pipeline_triggers t JOIN pipelines p ON p.id = t.pipeline_id AND p.deleted_at IS NULL
WHERE t.type IN ('pipeline_success', 'cron_dependency');

-- name: claim_firing :one
-- Compare-and-set the firing time unless the trigger is cooling down; NULL when it is.
UPDATE pipeline_triggers
SET last_triggered_at = clock_timestamp(), armed_at = NULL, updated_at = now()
WHERE id = $1 AND enabled
  AND (cooldown_seconds = 0 OR last_triggered_at IS NULL
       OR last_triggered_at + make_interval(secs => cooldown_seconds) <= clock_timestamp())
RETURNING id;

-- name: cooldown_left :val
-- Seconds until a cooling-down trigger may fire again.
SELECT GREATEST(0, EXTRACT(EPOCH FROM (last_triggered_at
       + make_interval(secs => cooldown_seconds) - clock_timestamp())))
FROM pipeline_triggers WHERE id = $1;

-- name: set_last_run :exec
-- Remember the run a firing created or joined.
UPDATE pipeline_triggers SET last_run_id = $2 WHERE id = $1;

-- name: set_armed :exec
-- Arm a cron_dependency trigger at one of its occurrences.
UPDATE pipeline_triggers SET armed_at = clock_timestamp(), updated_at = now() WHERE id = $1;

-- name: consume_occurrence :exec
-- A cron occurrence skipped by the cooldown: the clock restarts from now (see the evaluator).
UPDATE pipeline_triggers SET updated_at = now() WHERE id = $1;

-- name: zone_triggers :many
-- Enabled upload and file-pattern triggers of live pipelines watching a zone.
SELECT t.id, t.pipeline_id, t.type, t.config
FROM pipeline_triggers t JOIN pipelines p ON p.id = t.pipeline_id AND p.deleted_at IS NULL
WHERE t.enabled AND t.type IN ('landing_zone_upload', 'file_pattern')
  AND t.config->>'namespace' = $1 AND t.config->>'zone_name' = $2
ORDER BY t.pipeline_id, t.id;

-- name: success_triggers :many
-- Enabled pipeline_success triggers of live pipelines watching a pipeline.
SELECT t.id FROM pipeline_triggers t
JOIN pipelines p ON p.id = t.pipeline_id AND p.deleted_at IS NULL
WHERE t.enabled AND t.type = 'pipeline_success'
  AND t.config->>'namespace' = $1 AND t.config->>'layer' = $2 AND t.config->>'pipeline' = $3
ORDER BY t.pipeline_id, t.id;

-- name: dependent_triggers :many
-- Enabled, armed cron_dependency triggers that list a pipeline among their dependencies.
SELECT t.id FROM pipeline_triggers t
JOIN pipelines p ON p.id = t.pipeline_id AND p.deleted_at IS NULL
WHERE t.enabled AND t.type = 'cron_dependency' AND t.armed_at IS NOT NULL
  AND t.config->'dependencies' ? $1
ORDER BY t.pipeline_id, t.id;

-- name: clock_triggers :many
-- Enabled cron and cron_dependency triggers of live pipelines (the evaluator's tick).
SELECT t.id, t.type, t.config, t.last_triggered_at, t.armed_at, t.updated_at
FROM pipeline_triggers t JOIN pipelines p ON p.id = t.pipeline_id AND p.deleted_at IS NULL
WHERE t.enabled AND t.type IN ('cron', 'cron_dependency');

-- name: dependencies_succeeded :val
-- How many of the listed pipelines ("ns.layer.name") have a success finished after $2.
SELECT count(DISTINCT p.id)
FROM pipelines p
WHERE p.deleted_at IS NULL
  AND (p.namespace || '.' || p.layer || '.' || p.name) = ANY($1::text[])
  AND EXISTS (SELECT 1 FROM runs r WHERE r.pipeline_id = p.id AND r.status = 'success'
              AND r.finished_at > $2);

-- name: live_pipeline_id :val
-- The id of a live pipeline by natural key.
SELECT id FROM pipelines WHERE namespace = $1 AND layer = $2 AND name = $3 AND deleted_at IS NULL;

-- name: zone_watchers :many
-- Every trigger of a live pipeline that watches a zone, enabled or not (the zone page lists them);
-- $3/$4 (readable namespaces / pipeline ids) narrow it for a principal, NULL = everything.
SELECT t.id, t.type, t.config, t.enabled, t.last_triggered_at, t.last_run_id,
       p.namespace, p.layer, p.name AS pipeline
FROM pipeline_triggers t JOIN pipelines p ON p.id = t.pipeline_id AND p.deleted_at IS NULL
WHERE t.type IN ('landing_zone_upload', 'file_pattern')
  AND t.config->>'namespace' = $1 AND t.config->>'zone_name' = $2
  AND ($3::text[] IS NULL OR p.namespace = ANY($3) OR p.id::text = ANY($4::text[]))
ORDER BY p.layer, p.name, t.created_at
LIMIT $5;
