"""The playground page (frontend/) for the local stack: served on loopback with
its config.json, and the API under /api/ on the same origin, forwarded to the
emulator's data plane (which serves HTTPS with a self-signed certificate that
a browser would refuse; this server trusts exactly that one). So the page
needs no CORS and no certificate exception locally; on AWS the same files are
published on the CloudFront distribution (`publish`, by the pipeline), where the API's CORS
allows the distribution's origin.

Usage: python playground.py serve --api-url URL [--ca-bundle FILE] [--port 8321]
(The pipeline publishes the page after a deploy: pipeline/checks.py.)
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
FILES = ("index.html", "app.js", "markdown.js", "style.css", "favicon.svg")
# What the page sends and what the API answers that the page reads.
FORWARDED_REQUEST_HEADERS = ("x-api-key", "content-type", "idempotency-key")
FORWARDED_RESPONSE_HEADERS = ("content-type", "x-should-retry", "x-genstack-cost-usd")
MAX_BODY = 512 * 1024  # more than the API takes (256 KB): it answers the 413 itself
TIMEOUT = 60


def page_files() -> dict[str, bytes]:
    return {name: (FRONTEND / name).read_bytes() for name in FILES}


def handler_for(api_url: str, tls: ssl.SSLContext | None) -> type[BaseHTTPRequestHandler]:
    files = page_files()
    config = json.dumps({"apiUrl": "api"}).encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "genstack-playground"

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            # The CSP the CloudFront distribution sends, with this origin's API path.
            self.send_header("Content-Security-Policy", csp("'self'", "https:"))
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _forward(self) -> None:
            path = self.path[len("/api") :]
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, b'{"error": {"code": "PAYLOAD_TOO_LARGE", "message": "body too large"}}', "application/json")
                return
            body = self.rfile.read(length) if length else None
            headers = {k: v for k in FORWARDED_REQUEST_HEADERS if (v := self.headers.get(k))}
            request = urllib.request.Request(api_url + path, data=body, method=self.command, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT, context=tls) as response:
                    status, answer, answer_headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as error:
                status, answer, answer_headers = error.code, error.read(), error.headers
            except (urllib.error.URLError, TimeoutError) as error:
                message = json.dumps({"error": {"code": "API_UNREACHABLE", "message": f"the local API did not answer: {error}"}})
                self._send(502, message.encode(), "application/json")
                return
            kept = {k: v for k in FORWARDED_RESPONSE_HEADERS[1:] if (v := answer_headers.get(k))}
            self._send(status, answer, answer_headers.get("content-type", "application/json"), kept)

        def do_GET(self) -> None:
            if self.path.startswith("/api/"):
                self._forward()
                return
            name = urllib.parse.urlsplit(self.path).path.lstrip("/") or "index.html"
            if name == "config.json":
                self._send(200, config, "application/json")
            elif name in files:
                self._send(200, files[name], mimetypes.guess_type(name)[0] or "application/octet-stream")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            if self.path.startswith("/api/"):
                self._forward()
            else:
                self._send(405, b"method not allowed", "text/plain")

        do_DELETE = do_POST
        do_PATCH = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"playground: {self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}\n")

    return Handler


def csp(api_origin: str, outputs_origin: str) -> str:
    """The page's content security policy: its own files, the API, the outputs' links; nothing else."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"connect-src 'self' {api_origin}; img-src 'self' {outputs_origin}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def serve(api_url: str, ca_bundle: str | None, port: int, host: str = "127.0.0.1") -> None:
    tls = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
    server = ThreadingHTTPServer((host, port), handler_for(api_url.rstrip("/"), tls))
    print(f"playground: http://{host}:{server.server_port}/ (API {api_url})", file=sys.stderr, flush=True)
    server.serve_forever()


def published_files(info: dict[str, Any]) -> dict[str, bytes]:
    """The page as the distribution serves it: its config.json names the API,
    and index.html carries a meta policy that narrows connect-src to that API
    alone (the distribution's header policy allows the region's API Gateway)."""
    files = page_files()
    api = urllib.parse.urlsplit(info["apiUrl"])
    meta = f'<meta http-equiv="Content-Security-Policy" content="connect-src \'self\' {api.scheme}://{api.netloc}">'
    files["index.html"] = files["index.html"].replace(b'<meta charset="utf-8">', f'<meta charset="utf-8">\n  {meta}'.encode(), 1)
    files["config.json"] = json.dumps({"apiUrl": info["apiUrl"]}).encode()
    return files


def publish(s3: Any, info: dict[str, Any]) -> str:
    """Upload the page under playground/ in the outputs bucket, which the
    distribution serves at /playground/ (storage.yaml); returns its URL."""
    bucket = info["outputs"]["OutputsBucketName"]
    for name, body in published_files(info).items():
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        # SSE-S3, not the bucket's KMS key (prod): CloudFront reads these through
        # OAC without a grant on the key that protects job outputs.
        s3.put_object(
            Bucket=bucket,
            Key=f"playground/{name}",
            Body=body,
            ContentType=content_type,
            CacheControl="no-cache",
            ServerSideEncryption="AES256",
        )
    return info["outputs"]["PlaygroundUrl"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="serve the page and forward /api/ to the local API")
    serving.add_argument("--api-url", required=True)
    serving.add_argument("--ca-bundle")
    serving.add_argument("--port", type=int, default=8321)
    args = parser.parse_args(argv)
    serve(args.api_url, args.ca_bundle, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
