"""Secret scrubbing: the one place that decides what looks like a credential in text that is printed, logged,
stored or sent back to a caller.

* :func:`scrub_secrets` replaces key shapes and ``key=value`` credentials in free text with ``[REDACTED]``
  (error messages, log lines, stored errors).
* :func:`scrub_record` does that to every string of a JSON-like record and blanks the values under
  credential-like keys: the default ``scrub`` of the SDK's logger and of the log store.
* :func:`mask_credentials` masks a model provider's error message: the values of the environment's
  credentials and of given ones first, then key shapes, keeping a recognisable prefix (``sk-***``).
* :func:`mask_url` hides the password of a URL (store and cache URLs in messages).
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_REDACTED = "[REDACTED]"
_SECRET_PATTERNS = [
    re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"\b(?:ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{16,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,]{6,}"),
]
# Every pattern above needs one of these in the (case-folded) text, so a string with none of them cannot hold a
# secret they would find and skips the seven regular expressions (about 8x faster on ordinary text).
# tests/logs/test_logger.py fails when the patterns change, to keep this list in step.
_TRIGGERS = (
    "sk-",
    "akia",
    "asia",
    "aiza",
    "ghp_",
    "gho_",
    "ghs_",
    "github_pat_",
    "xox",
    "bearer",
    "api",
    "token",
    "secret",
    "password",
    "authorization",
)
_CREDENTIAL_KEY = re.compile(
    r"(?i)^(?:x-)?(?:api[_-]?key|apikey|secret|client[_-]?secret|password|passwd|"
    r"(?:access|auth|refresh|bearer)[_-]?token|token|authorization)$"
)
_PROVIDER_PATTERNS = (
    (re.compile(r"sk-[A-Za-z0-9_\-]{4,}"), "sk-***"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]+"), "Bearer ***"),
    (re.compile(r"(?i)\b((?:api[_-]?)?key|token|secret|password|sig(?:nature)?)=[^&\s\"',]+"), r"\1=***"),
    (re.compile(r"(?i)\b(x-api-key|api-key|authorization)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1\2***"),
    (re.compile(r"AIza[0-9A-Za-z_\-]{20,}"), "AIza***"),
)
_SECRET_ENV = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD)$")


def scrub_secrets(text: str) -> str:
    """Replace anything that looks like a credential with ``[REDACTED]``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + _REDACTED, text)
        else:
            text = pattern.sub(_REDACTED, text)
    return text


def scrub_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with every string (keys included, at any depth) passed through :func:`scrub_secrets`, and the
    values under credential-like keys (``api_key``, ``password``, ``token``...) replaced by ``[REDACTED]``.

    Example:
        >>> scrub_record({"input": {"q": "key sk-abcdefghijklmnop"}, "metadata": {"password": "hunter22"}})
        {'input': {'q': 'key [REDACTED]'}, 'metadata': {'password': '[REDACTED]'}}
    """
    return _scrub_value(record)  # type: ignore[no-any-return]


def _scrub_text(text: str) -> str:
    folded = text.casefold()
    return scrub_secrets(text) if any(t in folded for t in _TRIGGERS) else text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        return {
            _scrub_text(str(k)): _REDACTED
            if isinstance(v, str) and v and _CREDENTIAL_KEY.match(str(k))
            else _scrub_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


def mask_credentials(text: str, *, extra: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` with anything that looks like a credential, or equals a key in the environment (or in
    ``extra``), masked."""
    secrets = [value for name, value in os.environ.items() if _SECRET_ENV.search(name) and len(value) >= 8]
    for secret in sorted({*secrets, *(s for s in extra if len(s) >= 8)}, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern, replacement in _PROVIDER_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask_url(url: str) -> str:
    """``postgresql://u:pw@h/db`` -> ``postgresql://u:***@h/db``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
