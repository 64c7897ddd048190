"""The playground's hosting: on AWS the distribution's path, content security
policy and bucket grant, and the API's CORS origin, per environment (rendered
templates); locally, the page server (infrastructure/scripts/playground.py)
against an API on 127.0.0.1. The page itself runs in a real browser in
tests/e2e/test_playground.py."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pytest_socket import enable_socket, socket_allow_hosts

import playground
from cfn_render import render

ENVS = ("dev", "staging", "prod")


def rendered(name: str, **extra: str):
    parameters = {"Environment": name, **extra}
    if name == "prod":
        parameters["AlarmEmail"] = "ops@example.com"
    return render(parameters=parameters)


@pytest.mark.parametrize("name", ENVS)
def test_the_distribution_serves_the_playground_with_its_own_csp(name):
    storage = rendered(name).children["StorageStack"]
    config = storage.props("Distribution")["DistributionConfig"]
    (behavior,) = config["CacheBehaviors"]
    assert behavior["PathPattern"] == "/playground/*"
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    policy = storage.props("PlaygroundHeadersPolicy")["ResponseHeadersPolicyConfig"]
    csp = str(policy["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' https://*.execute-api.us-east-1.amazonaws.com",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ):
        assert directive in csp, directive
    assert "img-src 'self' https://" in csp  # the bucket's presigned links
    assert "OutputsBucket" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    # Job outputs keep their own policy: data, nothing runs.
    assert "sandbox" in str(storage.props("SecurityHeadersPolicy"))


@pytest.mark.parametrize("name", ENVS)
def test_cloudfront_may_read_the_playground_prefix_and_nothing_else(name):
    storage = rendered(name).children["StorageStack"]
    statements = storage.props("OutputsBucketPolicy")["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    (grant,) = allows
    assert grant["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert grant["Action"] == "s3:GetObject"
    assert str(grant["Resource"]).endswith("/playground/*")
    assert "Distribution" in str(grant["Condition"]["StringEquals"]["AWS:SourceArn"])


@pytest.mark.parametrize("name", ENVS)
def test_the_apis_cors_allows_the_playgrounds_origin_and_the_operators(name):
    template = rendered(name, CorsAllowedOrigins="https://app.example.com")
    origins = template.props("GenerateFunction")["Environment"]["Variables"]["CORS_ALLOWED_ORIGINS"]
    # The distribution's domain, through the storage layer's output, then the operator's origins.
    assert origins == "https://{GetAtt:Distribution.DomainName},https://app.example.com"
    assert template.outputs["PlaygroundUrl"] == "https://{GetAtt:Distribution.DomainName}/playground/index.html"


def test_a_published_page_names_its_api_and_narrows_connect_src_to_it():
    info = {"apiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/v1", "outputs": {}}
    files = playground.published_files(info)
    assert json.loads(files["config.json"]) == {"apiUrl": info["apiUrl"]}
    html = files["index.html"].decode()
    assert (
        '<meta http-equiv="Content-Security-Policy" content="connect-src \'self\' '
        'https://abc123.execute-api.eu-west-1.amazonaws.com">' in html
    )
    assert set(files) == {"index.html", "app.js", "markdown.js", "style.css", "favicon.svg", "config.json"}


def test_publish_uploads_every_file_under_playground(monkeypatch):
    put = []

    class S3:
        def put_object(self, **kwargs: Any) -> None:
            put.append(kwargs)

    info = {
        "apiUrl": "https://a.example/v1",
        "outputs": {"OutputsBucketName": "b", "PlaygroundUrl": "https://d/playground/index.html"},
    }
    assert playground.publish(S3(), info) == "https://d/playground/index.html"
    assert {p["Key"] for p in put} == {
        f"playground/{n}" for n in ("index.html", "app.js", "markdown.js", "style.css", "favicon.svg", "config.json")
    }
    types = {p["Key"].rsplit("/", 1)[1]: p["ContentType"] for p in put}
    assert types["index.html"] == "text/html"
    assert types["app.js"] in ("text/javascript", "application/javascript")
    assert all(p["CacheControl"] == "no-cache" and p["Bucket"] == "b" for p in put)
    assert all(p["ServerSideEncryption"] == "AES256" for p in put)  # CloudFront needs no grant on the outputs' KMS key


# ------------------------------------------------------------ local server
@pytest.fixture
def servers():
    """A fake API and the playground server in front of it, on 127.0.0.1."""
    enable_socket()
    socket_allow_hosts(["127.0.0.1"])
    seen: list[dict[str, Any]] = []

    class Api(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
            )
            status = 400 if self.path.endswith("/generate") else 200
            body = json.dumps(
                {"error": {"code": "INVALID_REQUEST", "message": "models is required"}} if status == 400 else {"ok": 1}
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-genstack-cost-usd", "0.001")
            self.send_header("Set-Cookie", "tracking=1")
            self.end_headers()
            self.wfile.write(body.encode())

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    page = ThreadingHTTPServer(("127.0.0.1", 0), playground.handler_for(f"http://127.0.0.1:{api.server_port}/v1", None))
    page.RequestHandlerClass.log_message = lambda *a: None
    for server in (api, page):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{page.server_port}", seen
    for server in (api, page):
        server.shutdown()


def fetch(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def test_the_local_server_serves_the_page_with_its_csp_and_a_config_naming_api(servers):
    base, _ = servers
    status, body, headers = fetch(base + "/")
    assert status == 200
    assert b"<title>genstack playground</title>" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, body, _ = fetch(base + "/config.json")
    assert json.loads(body) == {"apiUrl": "api"}
    assert fetch(base + "/app.js")[2]["Content-Type"] in ("text/javascript", "application/javascript")
    assert fetch(base + "/../../etc/passwd")[0] == 404  # only the page's own files
    assert fetch(base + "/template.yaml")[0] == 404


def test_the_local_server_forwards_api_calls_with_the_key_and_nothing_else(servers):
    base, seen = servers
    status, body, headers = fetch(
        base + "/api/generate",
        method="POST",
        body=b'{"prompt": "x"}',
        headers={"x-api-key": "k" * 30, "Content-Type": "application/json", "Cookie": "c=1", "Authorization": "Basic x"},
    )
    assert status == 400
    assert json.loads(body)["error"]["message"] == "models is required"  # the API's own answer
    assert headers["x-genstack-cost-usd"] == "0.001"
    assert "Set-Cookie" not in headers
    (call,) = seen
    assert (call["method"], call["path"], call["body"]) == ("POST", "/v1/generate", b'{"prompt": "x"}')
    sent = {k.lower() for k in call["headers"]}
    assert "x-api-key" in sent
    assert not sent & {"cookie", "authorization"}
    assert fetch(base + "/api/jobs?limit=1", headers={"x-api-key": "k"})[0] == 200
    assert seen[-1]["path"] == "/v1/jobs?limit=1"
    assert fetch(base + "/generate", method="POST", body=b"{}")[0] == 405  # not under /api/: not forwarded


def test_the_gateways_own_refusals_are_readable_by_the_playground():
    responses = rendered("dev").props("GenstackApi")["GatewayResponses"]
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        headers = responses[kind]["ResponseParameters"]["Headers"]
        assert headers["Access-Control-Allow-Origin"] == "'https://{GetAtt:Distribution.DomainName}'"
