-- name: insert_entry :exec
-- Record one mutation.
INSERT INTO audit_log (id, user_id, action, resource, detail, ip) VALUES ($1, $2, $3, $4, $5, $6);

-- name: list_entries :many
-- Filtered page of the audit log, newest first.
SELECT id, user_id, action, resource, detail, ip, created_at, count(*) OVER () AS total
FROM audit_log
WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR action = $2)
  AND ($3::timestamptz IS NULL OR created_at >= $3) AND ($4::timestamptz IS NULL OR created_at < $4)
ORDER BY created_at DESC, id LIMIT $5 OFFSET $6;

-- name: count_entries :val
-- Number of entries matching the filters.
SELECT count(*) FROM audit_log
WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR action = $2)
  AND ($3::timestamptz IS NULL OR created_at >= $3) AND ($4::timestamptz IS NULL OR created_at < $4);
