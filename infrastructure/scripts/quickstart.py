"""The quick-start `make local` prints: the API URL, a key and working curl
lines, read from the deployment's outputs file (the pipeline writes it; on an
emulator it holds the first key's value and the emulator's certificate).

Usage: python quickstart.py OUTPUTS_FILE [--playground-url URL]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any


def quickstart(info: dict[str, Any], playground_url: str = "") -> str:
    url, key, ca = info["apiUrl"], info["apiKey"], info["caBundle"]
    models = info["outputs"]["EnabledModelIds"].split(",")[:2]
    first_url = 'import json,sys; print(json.load(sys.stdin)["results"][0]["url"])'
    body = json.dumps({"prompt": "Write a haiku about message queues", "models": models})
    chat = json.dumps({"model": models[0], "messages": [{"role": "user", "content": "Say hello in French"}]})
    # Exits 1 (keep polling) while the job is QUEUED or RUNNING.
    poll = 'import json,sys; s=json.load(sys.stdin)["status"]; print(s); sys.exit(s in ("QUEUED","RUNNING"))'
    playground = f"  Playground  {playground_url}  (compare models side by side in a browser; paste the key)"
    return "\n".join(
        [
            "",
            "genstack is running on the local stack",
            f"  API URL  {url}",
            f"  API key  {key}",
            f"  TLS      the emulator's certificate is {ca} (curl --cacert, AWS_CA_BUNDLE)",
            *([playground] if playground_url else []),
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
    parser.add_argument("outputs", type=Path, help="the outputs file the pipeline wrote (outputs/local.json)")
    parser.add_argument("--playground-url", default="")
    args = parser.parse_args(argv)
    info = json.loads(args.outputs.read_text(encoding="utf-8"))
    if not info.get("apiKey"):
        parser.error(f"{args.outputs} holds no key value: it is not a local emulator's deployment")
    print(quickstart(info, args.playground_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
