-- name: lineage_pipelines :many
-- Every live pipeline with the file map of its published version (empty if never published).
SELECT id, namespace, layer, name, type, published_versions, current_version
FROM pipelines WHERE deleted_at IS NULL;

-- name: lineage_zones :many
-- Every landing zone with its count of files not yet processed.
SELECT z.namespace, z.name, count(f.id) FILTER (WHERE f.processed_at IS NULL) AS file_count
FROM landing_zones z LEFT JOIN landing_files f ON f.zone_id = z.id
GROUP BY z.namespace, z.name;

-- name: latest_runs :many
-- The latest run of each live pipeline with the quality counts of that run.
SELECT DISTINCT ON (r.pipeline_id) r.pipeline_id, r.id, r.status, r.started_at, r.duration_ms,
       q.total, q.passed, q.failed, q.warned
FROM runs r
JOIN pipelines p ON p.id = r.pipeline_id AND p.deleted_at IS NULL
LEFT JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status = 'pass') AS passed,
           count(*) FILTER (WHERE status <> 'pass' AND severity = 'error') AS failed,
           count(*) FILTER (WHERE status <> 'pass' AND severity = 'warn') AS warned
    FROM quality_results WHERE run_id = r.id
) q ON true
ORDER BY r.pipeline_id, r.created_at DESC;
