-- name: level :val
-- Highest permission (0 none, 1 read, 2 write, 3 admin) a principal holds on a resource through
-- grants on it or on its namespace, or by owning its namespace. $1 grantee ids, $2 type, $3 id,
-- $4 namespace, $5 user id.
SELECT GREATEST(
    COALESCE((SELECT max(CASE permission WHEN 'read' THEN 1 WHEN 'write' THEN 2 ELSE 3 END)
              FROM grants WHERE grantee_id = ANY($1::text[])
                AND ((resource_type = $2 AND resource_id = $3)
                     OR (resource_type = 'namespace' AND resource_id = $4))), 0),
    CASE WHEN EXISTS (SELECT 1 FROM namespaces WHERE name = $4 AND created_by = $5) THEN 3 ELSE 0 END);

-- name: readable_namespaces :many
-- Namespaces a principal owns or holds any grant on.
SELECT name AS id FROM namespaces WHERE created_by = $2
UNION
SELECT resource_id FROM grants WHERE resource_type = 'namespace' AND grantee_id = ANY($1::text[]);

-- name: readable_pipelines :many
-- Live pipelines a principal owns or holds a grant on.
SELECT p.id::text AS id, p.namespace || '.' || p.layer || '.' || p.name AS key
FROM pipelines p
WHERE p.deleted_at IS NULL AND (p.owner = $2 OR EXISTS (
    SELECT 1 FROM grants g WHERE g.resource_type = 'pipeline' AND g.resource_id = p.id::text
      AND g.grantee_id = ANY($1::text[])));

-- name: readable_zones :many
-- Landing zones a principal owns or holds a grant on.
SELECT z.id::text AS id, z.namespace || '.' || z.name AS key
FROM landing_zones z
WHERE z.owner = $2 OR EXISTS (
    SELECT 1 FROM grants g WHERE g.resource_type = 'landing_zone' AND g.resource_id = z.id::text
      AND g.grantee_id = ANY($1::text[]));

-- name: upsert_grant :one
-- Grant (or change) a permission; one grant per resource and grantee.
INSERT INTO grants (id, resource_type, resource_id, grantee_id, permission, granted_by)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (resource_type, resource_id, grantee_id)
DO UPDATE SET permission = EXCLUDED.permission, granted_by = EXCLUDED.granted_by,
              created_at = now()
RETURNING id, resource_type, resource_id, grantee_id, permission, granted_by, created_at;

-- name: list_grants :many
-- Grants on one resource.
SELECT id, resource_type, resource_id, grantee_id, permission, granted_by, created_at
FROM grants WHERE resource_type = $1 AND resource_id = $2 ORDER BY created_at, id;

-- name: delete_grant :execrows
-- Remove a grant.
DELETE FROM grants WHERE id = $1;

-- name: set_pipeline_owner :exec
-- Transfer a pipeline.
UPDATE pipelines SET owner = $2, updated_at = now() WHERE id = $1::uuid;

-- name: set_zone_owner :exec
-- Transfer a landing zone.
UPDATE landing_zones SET owner = $2, updated_at = now() WHERE id = $1::uuid;

-- name: set_namespace_owner :exec
-- Transfer a namespace.
UPDATE namespaces SET created_by = $2 WHERE name = $1;
