"""genstack, the command-line client: `python -m genstack <command>`.

  generate "prompt" --model M [--model M2] [--kind text|image|chart] [--budget USD]
           [--param [MODEL:]NAME=VALUE] [--system TEXT] [--count N] [--size WxH]
           [--messages FILE] [--out DIR] [--no-wait]
                                      submit a job, show each model's result as it
                                      lands, download the outputs
  status JOB_ID                       one job, as JSON (its result URLs expire: ask again for fresh ones)
  jobs [--limit N]                    your jobs, newest first
  delete JOB_ID                       delete a job, its outputs and its record
  usage [--from YYYY-MM] [--to YYYY-MM]   what your key spent, holds and has left, by model
  templates [--shared]                your prompt templates, or every key's shared ones
  enhance "prompt" [--kind K] [--temperature T]   an improved prompt

Where the API is and which key to use, first found wins:
  --url/--key/--ca-bundle; GENSTACK_API_URL, GENSTACK_API_KEY, GENSTACK_CA_BUNDLE;
  --outputs FILE (or GENSTACK_OUTPUTS): outputs/local.json written by `make local`
  (URL, key and certificate), or outputs/<env>.json written by `make deploy` (the
  key's value is then read with your AWS credentials).

Every API error is printed as `error CODE (HTTP status): message` and exits 1;
a usage error exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TERMINAL = {"COMPLETED", "PARTIAL", "FAILED", "BUDGET_EXCEEDED", "CANCELLED"}
EXTENSIONS = {"text": "txt", "image": "png", "chart": "png"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"error {code} ({status}): {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class Client:
    url: str
    key: str
    ca_bundle: str | None = None
    timeout: float = 30

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle or None)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"x-api-key": self.key}
        data = None
        if body is not None:
            data, headers["content-type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method, headers=headers)  # noqa: S310 - the API URL
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context()) as response:  # noqa: S310 - https API URL
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
            if not isinstance(payload, dict):  # not the API's JSON: its text is the message
                payload = {"message": raw.decode(errors="replace")}
            detail = payload.get("error") if isinstance(payload.get("error"), dict) else {}
            message = detail.get("message") or payload.get("message")  # the gateway's own errors: {"message": ...}
            raise ApiError(error.code, detail.get("code") or "HTTP_ERROR", str(message or error.reason)) from None
        except urllib.error.URLError as error:
            raise ApiError(0, "UNREACHABLE", f"cannot reach {self.url}: {error.reason}") from None

    def download(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=self.timeout, context=self._context()) as response:  # noqa: S310 - the job's CDN URL
            return response.read()


def from_outputs(path: Path) -> tuple[str, str, str | None]:
    info = json.loads(path.read_text(encoding="utf-8"))
    if info.get("apiKey"):  # an emulator deployment holds the key's value
        return info["apiUrl"], info["apiKey"], info.get("caBundle") or None
    import boto3  # make deploy writes the key's id: its value is read with your AWS credentials

    apigateway = boto3.Session(region_name=info.get("region")).client("apigateway", endpoint_url=info.get("endpoint"))
    key = apigateway.get_api_key(apiKey=info["outputs"]["ApiKeyId"], includeValue=True)
    return info["apiUrl"], key["value"], os.environ.get("AWS_CA_BUNDLE") or None


def client_from(args: argparse.Namespace) -> Client:
    url, key = args.url or os.environ.get("GENSTACK_API_URL"), args.key or os.environ.get("GENSTACK_API_KEY")
    ca = args.ca_bundle or os.environ.get("GENSTACK_CA_BUNDLE")
    if not (url and key):
        outputs = Path(args.outputs or os.environ.get("GENSTACK_OUTPUTS") or "outputs/local.json")
        if not outputs.is_file():
            raise SystemExit(
                "genstack: no API configured: pass --url and --key, set GENSTACK_API_URL and GENSTACK_API_KEY, or --outputs FILE"
            )
        out_url, out_key, out_ca = from_outputs(outputs)
        url, key, ca = url or out_url, key or out_key, ca or out_ca
    return Client(url, key, ca)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def usage_error(message: str) -> SystemExit:
    say(f"usage: {message}")
    return SystemExit(2)


def parameter_value(text: str) -> Any:
    """A --param value as JSON when it is JSON (0.2, 25, true, ["END"]), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parameters_of(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The job's parameters (--param, --system, --count, --size) and the per-model
    ones (--param MODEL:NAME=VALUE)."""
    common: dict[str, Any] = {}
    per_model: dict[str, dict[str, Any]] = {}
    for item in args.param or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise usage_error(f"--param {item!r}: expected NAME=VALUE or MODEL:NAME=VALUE")
        model, colon, short = name.rpartition(":")
        # A model ID has colons itself ("amazon.nova-lite-v1:0"): a target is a model of the job.
        if colon and model in args.model:
            per_model.setdefault(model, {})[short] = parameter_value(value)
        else:
            common[name] = parameter_value(value)
    if args.system:
        common["system"] = args.system
    if args.count is not None:
        common["count"] = args.count
    if args.size:
        width, x, height = args.size.lower().partition("x")
        if not (x and width.isdigit() and height.isdigit()):
            raise usage_error(f"--size {args.size!r}: expected WIDTHxHEIGHT, such as 1024x768")
        common["width"], common["height"] = int(width), int(height)
    return common, per_model


def generate(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"models": args.model, "kind": args.kind}
    if args.messages:
        body["messages"] = json.loads(Path(args.messages).read_text(encoding="utf-8"))
    elif args.prompt:
        body["prompt"] = args.prompt
    else:
        raise usage_error("give a prompt, or --messages FILE")
    if args.budget is not None:
        body["budgetUsd"] = args.budget
    common, per_model = parameters_of(args)
    if common:
        body["parameters"] = common
    if per_model:
        body["modelParameters"] = per_model
    accepted = client.request("POST", "/generate", body)
    job_id = accepted["jobId"]
    say(f"job {job_id} queued ({len(args.model)} model{'s' if len(args.model) > 1 else ''})")
    if args.no_wait:
        print(job_id)
        return 0
    seen: dict[str, str] = {}
    deadline = time.monotonic() + args.timeout
    while True:
        job = client.request("GET", f"/status/{job_id}")
        for result in job.get("results", []):
            if result["status"] != seen.get(result["model"]):
                seen[result["model"]] = result["status"]
                cost = f", ${result.get('costUsd', 0):.6f}" if result["status"] != "PENDING" else ""
                error = f": {result['error']['code']} ({result['error']['message']})" if result.get("error") else ""
                say(f"  {result['model']:<45} {result['status']}{cost}{error}")
        if job["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            say(f"job {job_id} still {job['status']} after {args.timeout:.0f} s; check later: genstack status {job_id}")
            return 1
        time.sleep(args.interval)
    say(f"job {job_id} {job['status']}, cost ${job.get('costUsd', 0):.6f}")
    out = Path(args.out) / job_id
    written = []
    for result in job.get("results", []):
        if result["status"] != "SUCCEEDED":
            continue
        name = result["model"].replace(":", "_").replace("/", "_")
        out.mkdir(parents=True, exist_ok=True)
        if result.get("text") is not None:
            target = out / f"{name}.txt"
            target.write_text(result["text"], encoding="utf-8")
            written.append(target)
        for extension, url in (result.get("files") or {result.get("kind", "text"): result.get("url")}).items():
            if not url or (extension in ("txt", "text") and result.get("text") is not None):
                continue
            target = out / f"{name}.{EXTENSIONS.get(extension, extension)}"
            try:
                target.write_bytes(client.download(url))
                written.append(target)
            except (urllib.error.URLError, OSError) as error:
                say(f"  could not download {url}: {error}")
    for path in written:
        print(path)
    return 0 if job["status"] in ("COMPLETED", "PARTIAL") else 1


def show_usage(client: Client, first: str | None, last: str | None) -> None:
    query = "&".join(f"{name}={value}" for name, value in (("from", first), ("to", last)) if value)
    usage = client.request("GET", "/usage" + (f"?{query}" if query else ""))
    own = " (set for this key)" if usage.get("budgetSetForThisKey") else ""
    print(f"tier {usage['tier']}, monthly budget ${usage['monthlyBudgetUsd']}{own}")
    for month in usage["months"]:
        unconfirmed = f", {month['unconfirmedCalls']} unconfirmed" if month["unconfirmedCalls"] else ""
        print(
            f"{month['period']}  spent ${month['spentUsd']:.6f}  reserved ${month['reservedUsd']:.6f}  "
            f"left ${month['remainingUsd']:.6f}  ({month['calls']} calls{unconfirmed})"
        )
        for line in month["models"]:
            print(
                f"  {line['model']:<45} {line['calls']:>6} calls  {line['inputTokens']:>10} in  "
                f"{line['outputTokens']:>10} out  {line['images']:>4} images  ${line['costUsd']:.6f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="genstack",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--ca-bundle")
    parser.add_argument("--outputs", help="outputs/local.json (make local) or outputs/<env>.json (make deploy)")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="submit a job, follow it, download its outputs")
    gen.add_argument("prompt", nargs="?", help="what to generate (or --messages)")
    gen.add_argument(
        "--param",
        action="append",
        metavar="[MODEL:]NAME=VALUE",
        help="a generation parameter for every model, or for one (repeatable): temperature=0.2, "
        "maxTokens=500, seed=7, steps=25, cfgScale=7, stopSequences='[\"END\"]', "
        "amazon.nova-lite-v1:0:topP=0.5. A model refuses what it does not take, listing what it does",
    )
    gen.add_argument("--system", help="the system prompt (text and chart jobs)")
    gen.add_argument("--count", type=int, help="the number of images (image jobs)")
    gen.add_argument("--size", metavar="WIDTHxHEIGHT", help="the image's or chart's size in pixels, such as 1024x768")
    gen.add_argument("--messages", metavar="FILE", help='a conversation, as JSON: [{"role": "user", "content": "..."}, ...]')
    gen.add_argument("--model", action="append", required=True, help="a Bedrock model ID (repeatable)")
    gen.add_argument("--kind", choices=["text", "image", "chart"], default="text")
    gen.add_argument("--budget", type=float, help="the job's budget in USD")
    gen.add_argument("--out", default="genstack-outputs", help="directory for the outputs (a folder per job)")
    gen.add_argument("--no-wait", action="store_true", help="print the job id and return")
    gen.add_argument("--timeout", type=float, default=900)
    gen.add_argument("--interval", type=float, default=1.0)
    status = commands.add_parser("status", help="one job, as JSON")
    status.add_argument("job_id")
    jobs = commands.add_parser("jobs", help="your jobs, newest first")
    jobs.add_argument("--limit", type=int, default=20)
    delete = commands.add_parser("delete", help="delete a job, its outputs (every version) and its record")
    delete.add_argument("job_id")
    usage = commands.add_parser("usage", help="your key's spend, reservations and budget left, by month and model")
    usage.add_argument("--from", dest="first", help="first month, YYYY-MM (default: this month)")
    usage.add_argument("--to", dest="last", help="last month, YYYY-MM")
    templates = commands.add_parser("templates", help="your prompt templates (or every key's shared ones)")
    templates.add_argument("--shared", action="store_true", help="every key's shared templates")
    enhance = commands.add_parser("enhance", help="an improved prompt")
    enhance.add_argument("prompt")
    enhance.add_argument("--kind", choices=["text", "image", "chart"], default="text")
    enhance.add_argument("--temperature", type=float, help="the enhance model's temperature")
    args = parser.parse_args(argv)
    client = client_from(args)
    try:
        if args.command == "generate":
            return generate(client, args)
        if args.command == "status":
            print(json.dumps(client.request("GET", f"/status/{args.job_id}"), indent=2))
        elif args.command == "jobs":
            for job in client.request("GET", f"/jobs?limit={args.limit}")["jobs"]:
                models = ",".join(job.get("models", []))
                print(f"{job['jobId']}  {job['status']:<15} {job['createdAt']}  ${job.get('costUsd', 0):.6f}  {models}")
        elif args.command == "delete":
            deleted = client.request("DELETE", f"/jobs/{args.job_id}")
            say(f"job {args.job_id} deleted ({deleted['outputVersionsDeleted']} output versions removed)")
        elif args.command == "usage":
            show_usage(client, args.first, args.last)
        elif args.command == "templates":
            token: str | None = None
            while True:
                query = "scope=shared" if args.shared else "scope=own"
                page = client.request("GET", f"/templates?{query}" + (f"&nextToken={token}" if token else ""))
                for template in page["templates"]:
                    shared = "shared" if template.get("shared") else "private"
                    variables = ",".join(template.get("variables", []))
                    print(f"{template['templateId']:<32} v{template['version']:<4} {shared:<8} {template['owner']}  {variables}")
                token = page.get("nextToken")
                if not token:
                    break
        elif args.command == "enhance":
            request: dict[str, Any] = {"prompt": args.prompt, "kind": args.kind}
            if args.temperature is not None:
                request["parameters"] = {"temperature": args.temperature}
            print(client.request("POST", "/enhance", request)["prompt"])
    except ApiError as error:
        say(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
