-- name: insert_token :one
-- Store a new API token (only its SHA-256 hash).
INSERT INTO api_tokens (id, name, user_id, prefix, token_hash, roles, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, name, user_id, prefix, roles, created_at, expires_at, last_used_at;

-- name: token_by_hash :one
-- A usable token: not revoked, not expired.
SELECT id, name, user_id, roles FROM api_tokens
WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());

-- name: token_valid :val
-- True while a token is usable (sessions started with it check this).
SELECT EXISTS (SELECT 1 FROM api_tokens WHERE id = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > now()));

-- name: touch_token :exec
-- Record use, at most once a minute per token.
UPDATE api_tokens SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds');

-- name: list_tokens :many
-- Live tokens, of one user or all ($1 NULL), newest first.
SELECT id, name, user_id, prefix, roles, created_at, expires_at, last_used_at,
       count(*) OVER () AS total
FROM api_tokens WHERE revoked_at IS NULL AND ($1::text IS NULL OR user_id = $1)
ORDER BY created_at DESC, id LIMIT $2 OFFSET $3;

-- name: count_tokens :val
-- Number of live tokens of one user or all.
SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL AND ($1::text IS NULL OR user_id = $1);

-- name: revoke_token :execrows
-- Revoke a token of the given user (or any user when $2 is NULL).
UPDATE api_tokens SET revoked_at = now()
WHERE id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR user_id = $2);
