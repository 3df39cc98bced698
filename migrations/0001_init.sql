-- Platform state for the whole spec: namespaces, pipelines and versions, the run queue with logs and
-- profiles, quality results, schedules, triggers, landing zones, table metadata, settings, Pro tables.

CREATE TABLE namespaces (
    name        text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT namespaces_name_check CHECK (name ~ '^[a-z][a-z0-9_-]*$' AND length(name) <= 128)
);

INSERT INTO namespaces (name, description) VALUES ('default', 'The default namespace');

CREATE TABLE pipelines (
    id                  uuid PRIMARY KEY,
    namespace           text NOT NULL REFERENCES namespaces (name),
    layer               text NOT NULL,
    name                text NOT NULL,
    type                text NOT NULL DEFAULT 'sql',
    description         text NOT NULL DEFAULT '',
    owner               text,
    published_versions  jsonb NOT NULL DEFAULT '{}'::jsonb,
    published_at        timestamptz,
    current_version     integer,
    draft_dirty         boolean NOT NULL DEFAULT true,
    max_versions        integer NOT NULL DEFAULT 50,
    retention_config    jsonb,
    drop_table_on_purge boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    CONSTRAINT pipelines_layer_check CHECK (layer IN ('bronze', 'silver', 'gold')),
    CONSTRAINT pipelines_name_check CHECK (name ~ '^[a-z][a-z0-9_-]*$' AND length(name) <= 128)
);

CREATE UNIQUE INDEX pipelines_live_name_key ON pipelines (namespace, layer, name) WHERE deleted_at IS NULL;
CREATE INDEX pipelines_created_at_idx ON pipelines (created_at DESC);

CREATE TABLE pipeline_versions (
    id                 uuid PRIMARY KEY,
    pipeline_id        uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    version_number     integer NOT NULL,
    message            text NOT NULL DEFAULT '',
    published_versions jsonb NOT NULL,
    config             jsonb NOT NULL DEFAULT '{}'::jsonb,
    data_snapshot_id   bigint,
    created_by         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pipeline_versions_number_key UNIQUE (pipeline_id, version_number)
);

CREATE TABLE schedules (
    id          uuid PRIMARY KEY,
    pipeline_id uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    cron_expr   text NOT NULL,
    timezone    text NOT NULL DEFAULT 'UTC',
    enabled     boolean NOT NULL DEFAULT true,
    last_run_id uuid,
    last_run_at timestamptz,
    next_run_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE enabled;

CREATE TABLE runs (
    id               uuid PRIMARY KEY,
    pipeline_id      uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    version_number   integer,
    status           text NOT NULL DEFAULT 'pending',
    phase            text,
    trigger          text NOT NULL DEFAULT 'manual',
    schedule_id      uuid REFERENCES schedules (id) ON DELETE SET NULL,
    scheduled_for    timestamptz,
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 1,
    retry_at         timestamptz,
    worker_id        text,
    lease_token      uuid,
    lease_expires_at timestamptz,
    heartbeat_at     timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    started_at       timestamptz,
    finished_at      timestamptz,
    duration_ms      bigint,
    rows_written     bigint,
    snapshot_id      bigint,
    error            text,
    phase_profiles   jsonb NOT NULL DEFAULT '[]'::jsonb,
    quality_summary  jsonb,
    landing_files    jsonb NOT NULL DEFAULT '[]'::jsonb,
    request_id       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT runs_status_check
        CHECK (status IN ('pending', 'running', 'success', 'failed', 'cancelled'))
);

CREATE UNIQUE INDEX runs_schedule_slot_key ON runs (schedule_id, scheduled_for)
    WHERE schedule_id IS NOT NULL AND scheduled_for IS NOT NULL;
CREATE UNIQUE INDEX runs_one_running_per_pipeline ON runs (pipeline_id) WHERE status = 'running';
CREATE INDEX runs_pending_idx ON runs (created_at) WHERE status = 'pending';
CREATE INDEX runs_pipeline_created_idx ON runs (pipeline_id, created_at DESC);
CREATE INDEX runs_created_idx ON runs (created_at DESC);
CREATE INDEX runs_status_idx ON runs (status);

CREATE TABLE run_logs (
    run_id  uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq     integer NOT NULL,
    ts      timestamptz NOT NULL DEFAULT now(),
    level   text NOT NULL,
    message text NOT NULL,
    PRIMARY KEY (run_id, seq),
    CONSTRAINT run_logs_level_check CHECK (level IN ('debug', 'info', 'warn', 'error'))
);

CREATE TABLE quality_results (
    id           uuid PRIMARY KEY,
    run_id       uuid REFERENCES runs (id) ON DELETE CASCADE,
    pipeline_id  uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    test_name    text NOT NULL,
    test_file    text,
    kind         text NOT NULL,
    severity     text NOT NULL,
    status       text NOT NULL,
    row_count    bigint NOT NULL DEFAULT 0,
    sample_rows  jsonb NOT NULL DEFAULT '[]'::jsonb,
    message      text NOT NULL DEFAULT '',
    compiled_sql text NOT NULL DEFAULT '',
    duration_ms  bigint NOT NULL DEFAULT 0,
    description  text NOT NULL DEFAULT '',
    tags         jsonb NOT NULL DEFAULT '[]'::jsonb,
    remediation  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT quality_results_kind_check CHECK (kind IN ('custom', 'column', 'freshness', 'invariant')),
    CONSTRAINT quality_results_severity_check CHECK (severity IN ('error', 'warn')),
    CONSTRAINT quality_results_status_check CHECK (status IN ('pass', 'fail', 'error'))
);

CREATE INDEX quality_results_run_idx ON quality_results (run_id);
CREATE INDEX quality_results_pipeline_test_idx ON quality_results (pipeline_id, test_name, created_at DESC);

CREATE TABLE pipeline_triggers (
    id                uuid PRIMARY KEY,
    pipeline_id       uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    type              text NOT NULL,
    config            jsonb NOT NULL DEFAULT '{}'::jsonb,
    token_hash        text UNIQUE,
    enabled           boolean NOT NULL DEFAULT true,
    cooldown_seconds  integer NOT NULL DEFAULT 0,
    last_triggered_at timestamptz,
    last_run_id       uuid,
    armed_at          timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pipeline_triggers_type_check CHECK (type IN ('landing_zone_upload', 'file_pattern',
        'pipeline_success', 'webhook', 'cron', 'cron_dependency')),
    CONSTRAINT pipeline_triggers_cooldown_check CHECK (cooldown_seconds BETWEEN 0 AND 86400)
);

CREATE INDEX pipeline_triggers_pipeline_idx ON pipeline_triggers (pipeline_id);

CREATE TABLE landing_zones (
    id                     uuid PRIMARY KEY,
    namespace              text NOT NULL REFERENCES namespaces (name),
    name                   text NOT NULL,
    description            text NOT NULL DEFAULT '',
    owner                  text,
    expected_schema        text NOT NULL DEFAULT '',
    processed_max_age_days integer DEFAULT 30,
    auto_purge             boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT landing_zones_name_key UNIQUE (namespace, name),
    CONSTRAINT landing_zones_name_check CHECK (name ~ '^[a-z][a-z0-9_-]*$' AND length(name) <= 128)
);

CREATE TABLE landing_files (
    id               uuid PRIMARY KEY,
    zone_id          uuid NOT NULL REFERENCES landing_zones (id) ON DELETE CASCADE,
    filename         text NOT NULL,
    s3_path          text NOT NULL,
    size_bytes       bigint NOT NULL,
    content_type     text NOT NULL DEFAULT 'application/octet-stream',
    uploaded_by      text,
    uploaded_at      timestamptz NOT NULL DEFAULT now(),
    processed_run_id uuid,
    processed_at     timestamptz,
    CONSTRAINT landing_files_path_key UNIQUE (s3_path)
);

CREATE INDEX landing_files_zone_idx ON landing_files (zone_id, uploaded_at DESC);

CREATE TABLE table_metadata (
    namespace           text NOT NULL,
    layer               text NOT NULL,
    name                text NOT NULL,
    description         text NOT NULL DEFAULT '',
    owner               text,
    column_descriptions jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, layer, name)
);

CREATE TABLE table_freshness (
    namespace   text NOT NULL,
    layer       text NOT NULL,
    name        text NOT NULL,
    status      text NOT NULL,
    age_seconds double precision NOT NULL,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, layer, name),
    CONSTRAINT table_freshness_status_check CHECK (status IN ('ok', 'warn', 'error'))
);

CREATE TABLE platform_settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reaper_status (
    id                   integer PRIMARY KEY DEFAULT 1,
    last_run_at          timestamptz,
    runs_pruned          bigint NOT NULL DEFAULT 0,
    logs_pruned          bigint NOT NULL DEFAULT 0,
    quality_pruned       bigint NOT NULL DEFAULT 0,
    pipelines_purged     bigint NOT NULL DEFAULT 0,
    runs_failed          bigint NOT NULL DEFAULT 0,
    branches_cleaned     bigint NOT NULL DEFAULT 0,
    lz_files_cleaned     bigint NOT NULL DEFAULT 0,
    audit_pruned         bigint NOT NULL DEFAULT 0,
    snapshots_expired    bigint NOT NULL DEFAULT 0,
    orphan_files_removed bigint NOT NULL DEFAULT 0,
    tables_compacted     bigint NOT NULL DEFAULT 0,
    blobs_deleted        bigint NOT NULL DEFAULT 0,
    running              boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reaper_status_singleton CHECK (id = 1)
);

INSERT INTO reaper_status (id) VALUES (1);

-- Pro tables: present in every edition so enabling a plugin never needs a migration.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    user_id      text NOT NULL,
    prefix       text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    roles        jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE grants (
    id            uuid PRIMARY KEY,
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    grantee_id    text NOT NULL,
    permission    text NOT NULL,
    granted_by    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT grants_resource_type_check CHECK (resource_type IN ('namespace', 'pipeline', 'landing_zone')),
    CONSTRAINT grants_permission_check CHECK (permission IN ('read', 'write', 'admin')),
    CONSTRAINT grants_unique_key UNIQUE (resource_type, resource_id, grantee_id)
);

CREATE TABLE audit_log (
    id         uuid PRIMARY KEY,
    user_id    text,
    action     text NOT NULL,
    resource   text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip         text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC);
