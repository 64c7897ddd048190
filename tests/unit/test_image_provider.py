"""Image models through InvokeModel: each family's request and response body,
checked by botocore Stubber against the Bedrock service model."""

from __future__ import annotations

import base64
import json

import pytest

from shared.budgets import JobInput, work_bound
from shared.providers import InvokeImageProvider, ModelCallError
from shared.registry import load_registry
from tests.unit.conftest import invoke_model_reply

PNG = b"\x89PNG\r\n\x1a\nfake-image-bytes"
NOVA, TITAN, SD35 = "amazon.nova-canvas-v1:0", "amazon.titan-image-generator-v2:0", "stability.sd3-5-large-v1:0"


@pytest.fixture
def bedrock(bedrock_stub):
    client, stubber = bedrock_stub
    return InvokeImageProvider(client), stubber


def expect(stubber, model: str, body: dict, response: dict) -> None:
    stubber.add_response(
        "invoke_model",
        invoke_model_reply(response),
        expected_params={
            "modelId": model,
            "body": json.dumps(body).encode(),
            "contentType": "application/json",
            "accept": "application/json",
        },
    )


@pytest.mark.parametrize("model", [NOVA, TITAN])
def test_amazon_image_models_take_a_text_to_image_task(bedrock, model):
    provider, stubber = bedrock
    body = {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lighthouse at dusk"},
        "imageGenerationConfig": {"numberOfImages": 1, "width": 1024, "height": 1024, "quality": "standard"},
    }
    expect(stubber, model, body, {"images": [base64.b64encode(PNG).decode()]})
    generation = provider.generate(model, "a lighthouse at dusk")
    assert (generation.content, generation.content_type, generation.extension, generation.images) == (PNG, "image/png", "png", 1)


def test_stability_models_take_a_prompt_and_answer_with_finish_reasons(bedrock):
    provider, stubber = bedrock
    body = {"prompt": "a lighthouse", "mode": "text-to-image", "aspect_ratio": "1:1", "output_format": "png"}
    expect(stubber, SD35, body, {"seeds": [42], "finish_reasons": [None], "images": [base64.b64encode(PNG).decode()]})
    assert provider.generate(SD35, "a lighthouse").content == PNG


@pytest.mark.parametrize(
    ("model", "response", "code"),
    [
        (SD35, {"seeds": [1], "finish_reasons": ["Filter reason: prompt"], "images": []}, "ContentFiltered"),
        (NOVA, {"images": [], "error": "blocked by the content filter"}, "ImageGenerationError"),
        (TITAN, {"images": []}, "EmptyResponse"),
        (TITAN, {"images": ["***not base64***"]}, "InvalidResponse"),
    ],
)
def test_refusals_and_broken_replies_are_model_errors(bedrock, model, response, code):
    provider, stubber = bedrock
    stubber.add_response("invoke_model", invoke_model_reply(response))
    with pytest.raises(ModelCallError) as raised:
        provider.generate(model, "x")
    assert raised.value.code == code
    assert not raised.value.retryable


def test_throttling_is_retryable(bedrock):
    provider, stubber = bedrock
    stubber.add_client_error("invoke_model", service_error_code="ThrottlingException", service_message="slow down")
    with pytest.raises(ModelCallError) as raised:
        provider.generate(NOVA, "x")
    assert raised.value.retryable


def test_images_are_priced_per_image():
    spec = load_registry()[NOVA]
    params = {"width": 1024, "height": 1024, "count": 1, "quality": "standard"}
    assert spec.cost_usd(0, 0, images=1) == work_bound(spec, "image", JobInput("x" * 5000), params) == spec.per_image
