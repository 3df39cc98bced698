"""URLs and tab names of the pipeline page, shared by its handler modules."""

from rat.pipelines.models import Pipeline

P = "/pipelines/{ns:str}/{layer:str}/{name:str}"
TABS = ("overview", "code", "preview", "quality", "settings", "triggers", "versions")


def pipeline_url(p: Pipeline, tab: str | None = None) -> str:
    base = f"/pipelines/{p.namespace}/{p.layer}/{p.name}"
    return f"{base}?tab={tab}" if tab else base
