-- name: pipeline_resource :one
-- A live pipeline as a shareable resource (natural key).
SELECT id::text AS id, namespace, owner FROM pipelines
WHERE namespace = $1 AND layer = $2 AND name = $3 AND deleted_at IS NULL;

-- name: pipeline_resource_by_id :one
-- A pipeline (live or soft-deleted) as a resource, by id.
SELECT id::text AS id, namespace, owner FROM pipelines WHERE id = $1;

-- name: run_resource :one
-- The pipeline a run belongs to.
SELECT p.id::text AS id, p.namespace, p.owner FROM runs r JOIN pipelines p ON p.id = r.pipeline_id
WHERE r.id = $1;

-- name: zone_resource :one
-- A landing zone as a resource.
SELECT id::text AS id, namespace, owner FROM landing_zones WHERE namespace = $1 AND name = $2;

-- name: zone_resource_by_id :one
-- A landing zone as a resource, by id.
SELECT id::text AS id, namespace, owner FROM landing_zones WHERE id = $1;

-- name: namespace_resource :one
-- A namespace as a resource; its creator owns it.
SELECT name AS id, name AS namespace, created_by AS owner FROM namespaces WHERE name = $1;

-- name: schedule_resource :one
-- The pipeline a schedule belongs to.
SELECT p.id::text AS id, p.namespace, p.owner
FROM schedules s JOIN pipelines p ON p.id = s.pipeline_id WHERE s.id = $1;

-- name: grant_resource :one
-- The resource a grant is on.
SELECT resource_type, resource_id FROM grants WHERE id = $1;

-- name: notify_event :exec
-- Publish a domain event to LISTENers on rat_events (payload: JSON {type, data}).
SELECT pg_notify('rat_events', $1);
