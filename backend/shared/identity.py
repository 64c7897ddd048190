"""Who an API key is, as the functions see it: API Gateway's apiKeyId when it
sets one (AWS always does on key-protected routes), otherwise, on emulators
that do not, a hash of the key's value. Jobs, templates, spend and the key's
profile all belong to this id; infrastructure/scripts/api_key.py computes the
same one. The key itself is never stored."""

from __future__ import annotations

import hashlib


def key_hash_owner(value: str) -> str:
    return "keyhash-" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
