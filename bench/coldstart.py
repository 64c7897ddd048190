"""Cold start and memory of each function, measured in fresh interpreters.

Run as a script with a function's built package first on sys.path (what Lambda
does): prints JSON with the seconds to import and initialise the handler module and
create its clients, and the peak RSS after it; with --baseline, the same for
importing boto3 and creating those clients only (the floor any Python function
on boto3 pays).

  python coldstart.py --package DIR --module generate.app --clients dynamodb,sqs [--baseline]

The handler's figure includes creating its clients (it creates them lazily, at
its first request, so they are part of every cold start either way).
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--clients", required=True, help="comma-separated boto3 clients the function creates")
    parser.add_argument("--baseline", action="store_true", help="only boto3 and the clients, not the handler")
    args = parser.parse_args()
    sys.path.insert(0, args.package)
    started = time.perf_counter()
    if not args.baseline:
        importlib.import_module(args.module)
    import boto3

    for service in args.clients.split(","):
        if service == "dynamodb":
            boto3.resource("dynamodb").Table("t")
        else:
            boto3.client(service)
    elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "rssMb": rss_mb}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
