"""Powertools reads its settings when Logger and Metrics are created at import
time of the handler modules, i.e. at test collection: set them first."""

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "genstack")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "genstack-test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from tests.moto_fixes import patch_moto_number_sums

patch_moto_number_sums()
