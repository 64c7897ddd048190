"""The command-line client's request building (its calls to the API are
tested against the local stack in tests/e2e/test_cli.py)."""

from __future__ import annotations

import argparse

import pytest
from genstack.__main__ import parameters_of

LITE = "amazon.nova-lite-v1:0"


def args(**given):
    base = {"param": None, "system": None, "count": None, "size": None, "model": [LITE, "amazon.nova-micro-v1:0"]}
    return argparse.Namespace(**{**base, **given})


def test_params_are_json_values_for_every_model_or_for_one():
    common, per_model = parameters_of(
        args(param=["temperature=0.2", 'stopSequences=["END"]', "quality=premium", f"{LITE}:topP=0.5"], system="Be terse.")
    )
    assert common == {"temperature": 0.2, "stopSequences": ["END"], "quality": "premium", "system": "Be terse."}
    assert per_model == {LITE: {"topP": 0.5}}


def test_count_and_size_become_parameters():
    common, _ = parameters_of(args(count=3, size="1280x720"))
    assert common == {"count": 3, "width": 1280, "height": 720}


@pytest.mark.parametrize("given", [{"param": ["temperature"]}, {"size": "big"}, {"size": "10x"}])
def test_a_malformed_option_is_a_usage_error(given):
    with pytest.raises(SystemExit) as raised:
        parameters_of(args(**given))
    assert raised.value.code == 2
