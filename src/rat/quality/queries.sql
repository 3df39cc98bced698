-- name: delete_run_results :exec
-- A retried run keeps only the results of its latest attempt.
DELETE FROM quality_results WHERE run_id = $1;

-- name: insert_result :exec
-- One test execution; clock_timestamp() keeps the execution order of a suite.
INSERT INTO quality_results (id, run_id, pipeline_id, test_name, test_file, kind, severity, status,
                             row_count, sample_rows, message, compiled_sql, duration_ms,
                             description, tags, remediation, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, clock_timestamp());

-- name: list_run_results :many
-- The results of one run in execution order.
SELECT id, run_id, test_name, test_file, kind, severity, status, row_count, sample_rows, message,
       compiled_sql, duration_ms, description, tags, remediation, created_at
FROM quality_results WHERE run_id = $1
ORDER BY created_at, test_name;

-- name: list_results_by_ids :many
-- Results just stored for an ad-hoc test run, in execution order.
SELECT id, run_id, test_name, test_file, kind, severity, status, row_count, sample_rows, message,
       compiled_sql, duration_ms, description, tags, remediation, created_at
FROM quality_results WHERE id = ANY($1::uuid[])
ORDER BY created_at, test_name;


-- name: run_exists :val
-- True when the run exists.
SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1);
