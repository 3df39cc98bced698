"""Plugin selection, configuration, failure isolation and the session cookie signer."""

from __future__ import annotations

import pytest

from rat.config import load_settings
from rat.plugins.host import FatalPluginError, PluginHost, redact, selection
from rat.plugins.protocols import Principal, ReadScope, Resource
from rat.web.session import IDLE_SECONDS, SessionSigner


def test_env_list_overrides_yaml_enabled_flags() -> None:
    blocks = {"rat-auth": {"enabled": True, "config": {"mode": "tokens"}},
              "rat-audit": {"enabled": False}}
    assert selection("", blocks) == {"rat-auth": {"mode": "tokens"}}
    assert selection("rat-audit, rat-x", blocks) == {"rat-audit": {}, "rat-x": {}}


def test_bad_plugin_block_is_fatal() -> None:
    settings = load_settings({}, plugin_config={"rat-auth": "yes"})
    with pytest.raises(FatalPluginError, match="must be a mapping"):
        PluginHost.load(settings)


def test_unknown_plugin_is_an_error_status_not_a_crash() -> None:
    host = PluginHost.load(load_settings({"RAT_PLUGINS": "rat-audit,rat-nowhere"}))
    assert host.enabled("rat-audit")
    assert not host.enabled("rat-nowhere")
    entry = {e.name: e for e in host.entries()}["rat-nowhere"]
    assert entry.status == "error"
    assert "not found" in (entry.error or "")
    assert host.features()["edition"] == "pro"


def test_broken_single_slot_plugin_stops_start_up() -> None:
    settings = load_settings({"RAT_PLUGINS": "rat-auth"},
                             plugin_config={"rat-auth": {"config": {"mode": "oidc"}}})
    with pytest.raises(FatalPluginError, match=r"rat-auth .*issuer, audience and jwks_url"):
        PluginHost.load(settings)
    bad_type = load_settings({"RAT_PLUGINS": "rat-auth"},
                             plugin_config={"rat-auth": {"config": {"mode": "magic"}}})
    with pytest.raises(FatalPluginError, match="invalid config"):
        PluginHost.load(bad_type)


def test_sharing_requires_auth() -> None:
    with pytest.raises(FatalPluginError, match="requires plugin"):
        PluginHost.load(load_settings({"RAT_PLUGINS": "rat-sharing"}))


def test_redaction_and_read_scope() -> None:
    assert redact({"client_secret": "x", "issuer": "i", "nested": {"api_key": "k"}}) == \
        {"client_secret": "***", "issuer": "i", "nested": {"api_key": "***"}}
    scope = ReadScope(namespaces=("team",), pipeline_keys=("default.bronze.a",),
                      zone_keys=("default.drop",), pipeline_ids=("1",))
    assert scope.allows_table("team", "gold", "x")
    assert scope.allows_table("default", "bronze", "a")
    assert not scope.allows_table("default", "bronze", "b")
    assert scope.allows_path("default/pipelines/bronze/a/pipeline.sql")
    assert scope.allows_path("default/landing/drop/f.csv")
    assert not scope.allows_path("default/landing/other/f.csv")
    assert scope.allows(Resource(type="pipeline", id="1", namespace="default"))
    assert not scope.allows(Resource(type="landing_zone", id="1", namespace="default"))


def test_session_cookie_is_signed_and_expires_when_idle() -> None:
    signer = SessionSigner("secret")
    who = Principal(user_id="alice", roles=("analyst",))
    value = signer.dump(who, now=1000.0)
    session = signer.load(value, now=1000.0 + IDLE_SECONDS - 1)
    assert session is not None
    assert session.principal == who
    assert signer.load(value, now=1000.0 + IDLE_SECONDS + 1) is None
    assert SessionSigner("other").load(value, now=1000.0) is None
    payload, _, mac = value.partition(".")
    assert signer.load(payload[:-2] + "AA." + mac, now=1000.0) is None
    assert signer.load("garbage", now=1000.0) is None
