"""HTML pages (htmx). Each page calls the same services as its JSON twin under /api/v1."""

from rat.web.pages import (
    auth,
    explorer,
    home,
    landing,
    lineage,
    pipeline,
    pipeline_actions,
    pipeline_quality,
    pipeline_triggers,
    pipeline_wap,
    pipelines,
    query,
    runs,
    settings,
)

ROUTES = [*home.ROUTES, *pipelines.ROUTES, *pipeline.ROUTES, *pipeline_actions.ROUTES,
          *pipeline_wap.ROUTES, *pipeline_quality.ROUTES,
          *pipeline_triggers.ROUTES,
          *runs.ROUTES, *query.ROUTES, *explorer.ROUTES, *settings.ROUTES, *auth.ROUTES,
          *lineage.ROUTES, *landing.ROUTES]
