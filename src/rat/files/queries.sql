-- name: zone_exists :val
-- True when the landing zone exists.
SELECT EXISTS (SELECT 1 FROM landing_zones WHERE namespace = $1 AND name = $2);

-- name: namespace_exists :val
-- True when the namespace exists.
SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = $1);
