"""moto's AWS, served over HTTP one request at a time, for the kill test.

    python -m tests.faults.moto_server PORT

Not moto's ThreadedMotoServer: moto's DynamoDB is not thread-safe (two
concurrent conditional writes of one item can both pass), while DynamoDB
applies each request atomically; a single-threaded server restores that (and
werkzeug's single-threaded server closes each connection after its answer,
so no client holds it). With tests.moto_fixes applied, as in every test."""

from __future__ import annotations

import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

from tests.moto_fixes import patch_moto_number_sums


def main() -> int:
    patch_moto_number_sums()
    run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
