"""Collect what a user (or a test) needs from a genstack stack deployed on the
local emulator: the root outputs, the local data-plane URL and the first API
key's value. Writes them as JSON and prints a quick-start with curl.

Usage: python local_outputs.py --stack-name NAME --endpoint URL --out FILE [--quiet]
       python local_outputs.py --print FILE [--playground-url URL]   (the quick-start of a written file)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import boto3

from pipeline import invoke_url, openai_url


def emulator_session(region: str) -> boto3.Session:
    """The emulator accepts any credentials; never pick up a real AWS profile."""
    return boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)  # noqa: S106


def collect(stack_name: str, endpoint: str, region: str) -> dict:
    session = emulator_session(region)
    cfn = session.client("cloudformation", endpoint_url=endpoint)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    key = session.client("apigateway", endpoint_url=endpoint).get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)
    return {
        "stackName": stack_name,
        "stackStatus": stack["StackStatus"],
        "endpoint": endpoint,
        "apiUrl": invoke_url(outputs, endpoint),
        "openAiBaseUrl": openai_url(outputs, endpoint),
        # The emulator's self-signed certificate: trust it (curl --cacert, AWS_CA_BUNDLE).
        "caBundle": os.environ.get("AWS_CA_BUNDLE", ""),
        "region": region,
        "apiKey": key["value"],
        "outputs": outputs,
    }


def quickstart(info: dict, playground_url: str = "") -> str:
    url, key, ca = info["apiUrl"], info["apiKey"], info["caBundle"]
    models = info["outputs"]["EnabledModelIds"].split(",")[:2]
    first_url = 'import json,sys; print(json.load(sys.stdin)["results"][0]["url"])'
    body = json.dumps({"prompt": "Write a haiku about message queues", "models": models})
    chat = json.dumps({"model": models[0], "messages": [{"role": "user", "content": "Say hello in French"}]})
    # Exits 1 (keep polling) while the job is QUEUED or RUNNING.
    poll = 'import json,sys; s=json.load(sys.stdin)["status"]; print(s); sys.exit(s in ("QUEUED","RUNNING"))'
    return "\n".join(
        [
            "",
            "genstack is running on the local stack",
            f"  API URL  {url}",
            f"  API key  {key}",
            f"  TLS      the emulator's certificate is {ca} (curl --cacert, AWS_CA_BUNDLE)",
            *(
                [f"  Playground  {playground_url}  (compare models side by side in a browser; paste the key)"]
                if playground_url
                else []
            ),
            "",
            "Submit a job and poll it until it finishes:",
            "",
            f"  URL={shlex.quote(url)}; KEY={shlex.quote(key)}; CA={shlex.quote(ca)}",
            '  JOB=$(curl -s --cacert "$CA" -X POST "$URL/generate" -H "x-api-key: $KEY" -H "content-type: application/json" \\',
            f"        -d {shlex.quote(body)} | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"jobId\"])')",
            f'  until curl -s --cacert "$CA" "$URL/status/$JOB" -H "x-api-key: $KEY" | python3 -c {shlex.quote(poll)}; '
            "do sleep 1; done",
            '  curl -s --cacert "$CA" "$URL/status/$JOB" -H "x-api-key: $KEY"; echo',
            "  # the first model's output, through its link: private (an S3 presigned URL), no key",
            "  # needed, good for OutputLinkSeconds (GET /status signs fresh ones each time)",
            '  LINK=$(curl -s --cacert "$CA" "$URL/status/$JOB" -H "x-api-key: $KEY" \\',
            f"        | python3 -c {shlex.quote(first_url)})",
            '  curl -s --cacert "$CA" "$LINK"; echo',
            "",
            "The same models through the OpenAI API (any OpenAI client: base URL and key):",
            "",
            f"  BASE={shlex.quote(info['openAiBaseUrl'])}",
            '  curl -s --cacert "$CA" "$BASE/chat/completions" -H "Authorization: Bearer $KEY" -H "x-api-key: $KEY" \\',
            f"        -H 'content-type: application/json' -d {shlex.quote(chat)}; echo",
            "  # (the emulator reads the key from x-api-key; AWS takes the Authorization header alone)",
            "",
            "Stop the local stack with: make local-stop",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", type=Path, help="print the quick-start of an outputs file written before")
    parser.add_argument("--playground-url", default="")
    parser.add_argument("--stack-name")
    parser.add_argument("--endpoint")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    parser.add_argument("--quiet", action="store_true", help="write the file only")
    args = parser.parse_args(argv)
    if args.print:
        print(quickstart(json.loads(args.print.read_text(encoding="utf-8")), args.playground_url))
        return 0
    if not (args.stack_name and args.endpoint and args.out):
        parser.error("--stack-name, --endpoint and --out are required (or --print FILE)")
    info = collect(args.stack_name, args.endpoint, args.region)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if not args.quiet:
        print(quickstart(info, args.playground_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
