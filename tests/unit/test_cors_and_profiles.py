"""CORS for configured browser origins (Powertools answers the preflight), and
Bedrock cross-region inference-profile IDs as enabled models."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from shared.api import make_resolver
from shared.registry import enabled_specs, spec_for
from shared.settings import Settings
from tests.unit.conftest import load_event

ORIGINS = ("https://app.example.com", "https://admin.example.com")


def preflight(origin: str, path: str = "/generate") -> dict:
    event = load_event("generate.json")
    event.update(httpMethod="OPTIONS", body=None, path=path, resource=path)
    event["requestContext"] = {**event["requestContext"], "httpMethod": "OPTIONS"}
    event["headers"] = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    return event


def resolver(origins: tuple[str, ...]):
    app = make_resolver(cors_origins=origins)

    @app.post("/generate")
    def _generate() -> dict:
        return {"ok": True}

    return app


@pytest.mark.parametrize("origin", ORIGINS)
def test_preflight_from_an_allowed_origin_is_answered_with_that_origin(origin, context):
    response = resolver(ORIGINS).resolve(preflight(origin), context)
    headers = {k.lower(): v for k, v in response["multiValueHeaders"].items()}
    assert response["statusCode"] == 204
    assert headers["access-control-allow-origin"] == [origin]
    assert "x-api-key" in headers["access-control-allow-headers"][0].lower()


def test_an_unlisted_origin_gets_no_cors_headers(context):
    response = resolver(ORIGINS).resolve(preflight("https://evil.example.net"), context)
    headers = {k.lower() for k in response["multiValueHeaders"]}
    assert "access-control-allow-origin" not in headers


def test_without_configured_origins_there_is_no_cors_at_all(context):
    response = resolver(()).resolve(preflight(ORIGINS[0]), context)
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["code"] == "ROUTE_NOT_FOUND"


def test_origins_come_from_the_environment():
    settings = Settings.from_env({"CORS_ALLOWED_ORIGINS": " https://a.example.com, https://b.example.com ,"})
    assert settings.cors_allowed_origins == ("https://a.example.com", "https://b.example.com")
    assert Settings.from_env({}).cors_allowed_origins == ()


def test_an_inference_profile_id_is_priced_as_its_model_and_keeps_its_own_id():
    profile = spec_for("us.anthropic.claude-3-5-haiku-20241022-v1:0")
    base = spec_for("anthropic.claude-3-5-haiku-20241022-v1:0")
    assert profile is not None
    assert base is not None
    assert profile.id == "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    assert (profile.input_per_1k, profile.output_per_1k, profile.kind) == (base.input_per_1k, base.output_per_1k, "text")
    assert profile.cost_usd(1000, 1000) == base.cost_usd(1000, 1000) > Decimal(0)


@pytest.mark.parametrize("model", ["xx.amazon.nova-lite-v1:0", "us.unknown-model-v1:0", "us."])
def test_unknown_prefixes_and_models_are_refused(model):
    assert spec_for(model) is None
    with pytest.raises(ValueError, match="registry does not know"):
        enabled_specs((model,))
