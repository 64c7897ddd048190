"""Run by the sam-cli tool environment's Python (it has aws-sam-translator):
the SAM transform of template.yaml, as CloudFormation would run it, printed
as JSON. Usage: .tools/sam/bin/python tests/sam_translate.py template.yaml"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class _NoManagedPolicies:
    def load(self) -> dict:
        return {}


os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
with open(sys.argv[1], encoding="utf-8") as source:
    template = yaml_parse(source.read())
# What `sam package` puts there: the code's S3 location (as `sam validate` assumes one).
template["Globals"]["Function"]["CodeUri"] = "s3://genstack-artifacts/code.zip"
print(json.dumps(transform(template, {}, _NoManagedPolicies())))
