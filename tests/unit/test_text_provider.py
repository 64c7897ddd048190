"""The Converse provider against Bedrock's real request and response shapes
(botocore Stubber validates both against the service model)."""

from __future__ import annotations

import pytest

from shared.providers import ConverseTextProvider, ModelCallError

MODEL = "amazon.nova-micro-v1:0"


def converse_response(text: str = "queues hum softly", *, stop: str = "end_turn"):
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19},
        "metrics": {"latencyMs": 321},
    }


def test_request_shape_and_parsed_generation(bedrock_stub):
    client, stubber = bedrock_stub
    stubber.add_response(
        "converse",
        converse_response(),
        expected_params={
            "modelId": MODEL,
            "messages": [{"role": "user", "content": [{"text": "Write a haiku"}]}],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 256, "temperature": 0.7},
        },
    )
    generation = ConverseTextProvider(client).generate(MODEL, "Write a haiku", system="Be brief.", max_tokens=256)
    assert generation.text == "queues hum softly"
    assert generation.content == b"queues hum softly"
    assert (generation.input_tokens, generation.output_tokens, generation.latency_ms) == (12, 7, 321)
    assert generation.content_type.startswith("text/plain")


def test_no_system_prompt_is_sent_when_none_given(bedrock_stub):
    client, stubber = bedrock_stub
    stubber.add_response(
        "converse",
        converse_response(),
        expected_params={
            "modelId": MODEL,
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": 10, "temperature": 0.7},
        },
    )
    ConverseTextProvider(client).generate(MODEL, "hi", max_tokens=10)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("ThrottlingException", True),
        ("ModelTimeoutException", True),
        ("ServiceUnavailableException", True),
        ("ValidationException", False),
        ("AccessDeniedException", False),
        ("ResourceNotFoundException", False),
    ],
)
def test_bedrock_errors_become_model_call_errors(bedrock_stub, code, retryable):
    client, stubber = bedrock_stub
    stubber.add_client_error("converse", service_error_code=code, service_message="nope", http_status_code=400)
    with pytest.raises(ModelCallError) as raised:
        ConverseTextProvider(client).generate(MODEL, "hi", max_tokens=10)
    assert (raised.value.code, raised.value.retryable, raised.value.message) == (code, retryable, "nope")


def test_a_reply_without_text_is_an_error(bedrock_stub):
    client, stubber = bedrock_stub
    response = converse_response()
    response["output"]["message"]["content"] = []
    response["stopReason"] = "content_filtered"
    stubber.add_response("converse", response)
    with pytest.raises(ModelCallError, match="content_filtered"):
        ConverseTextProvider(client).generate(MODEL, "hi", max_tokens=10)
