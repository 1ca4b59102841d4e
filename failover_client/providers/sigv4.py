"""AWS Signature Version 4 request signing, on hashlib and hmac only (no botocore).

AWS APIs (Bedrock among them) authenticate each request by a signature over its method, path,
query, chosen headers, body and the time, keyed by a key derived from the secret access key,
the date, the region and the service.  The steps follow AWS's published algorithm; the test
suite checks them against AWS's own test vectors:

1. canonical request: method, canonical URI, canonical query, ``name:value`` lines of the signed
   headers (lower-case names, sorted, values trimmed), the signed header names, the hex SHA-256
   of the body;
2. string to sign: ``AWS4-HMAC-SHA256``, the time, the scope ``date/region/service/aws4_request``,
   the hex SHA-256 of the canonical request;
3. signing key: HMAC-SHA256 chained over ``"AWS4" + secret``, date, region, service,
   ``aws4_request``; the signature is the hex HMAC of the string to sign under it.

Every service except S3 encodes the path *as it is sent* once more for the canonical URI, so a
model id sent as ``anthropic.claude-v2%3A1`` is signed as ``anthropic.claude-v2%253A1``.

Credentials and region come from arguments or the standard environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``).  Profiles, SSO and instance metadata are not read: pass credentials
from wherever they live.  No secret appears in a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from ..errors import InvalidArgumentError

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_REGION = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AwsCredentials:
    """An access key pair, and the session token that temporary (STS) credentials carry."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.secret_access_key:
            raise InvalidArgumentError("AWS credentials need both an access key id and a secret access key")

    def __repr__(self) -> str:
        key = self.access_key_id
        shown = f"{key[:4]}…{key[-4:]}" if len(key) > 8 else "…"
        token = ", session_token=…" if self.session_token else ""
        return f"AwsCredentials(access_key_id={shown!r}, secret_access_key=…{token})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AwsCredentials | None:
        """``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``), or None."""
        env = os.environ if environ is None else environ
        access_key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not access_key or not secret:
            return None
        return cls(access_key, secret, env.get("AWS_SESSION_TOKEN") or None)


def region_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def check_region(region: str) -> str:
    """A region goes into a host name: refuse anything that is not one (``us-east-1``)."""
    if not _REGION.match(region):
        raise InvalidArgumentError(f"{region!r} is not an AWS region name (like 'us-east-1')")
    return region


# --- the canonical forms ------------------------------------------------------------------------


def uri_encode(text: str, keep_slash: bool = False) -> str:
    """Percent-encode UTF-8 bytes, leaving only ``A-Z a-z 0-9 - _ . ~`` (and ``/`` if asked)."""
    return quote(text, safe="/" if keep_slash else "")


def canonical_uri(path: str) -> str:
    """The path as sent, encoded once more (the rule for every service but S3)."""
    return uri_encode(path or "/", keep_slash=True)


def canonical_query(query: str) -> str:
    """``k=v`` pairs decoded, re-encoded strictly, sorted by key then value, joined by ``&``."""
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((uri_encode(unquote(key)), uri_encode(unquote(value))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str], payload_hash: str) -> str:
    """``headers``: exactly the headers to sign, with lower-case names."""
    names = sorted(headers)
    lines = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names)
    return "\n".join((method.upper(), canonical_uri(path), canonical_query(query), lines, ";".join(names),
                      payload_hash))


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def host_header(url: str) -> str:
    """The Host a client sends for ``url``: the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    port = parts.port
    return host if port is None or port == _DEFAULT_PORTS.get(parts.scheme) else f"{host}:{port}"


# --- signing ------------------------------------------------------------------------------------


class SigV4Signer:
    """Signs requests for one service in one region.  Thread-safe; the signing key is derived
    once per UTC day.  ``clock`` (seconds since the epoch) is injectable for tests."""

    def __init__(self, credentials: AwsCredentials, region: str, service: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.credentials = credentials
        self.region = check_region(region)
        self.service = service
        self._clock = clock
        self._key: tuple[str, bytes] = ("", b"")

    def __repr__(self) -> str:
        return f"SigV4Signer({self.credentials!r}, region={self.region!r}, service={self.service!r})"

    def _signing_key(self, date: str) -> bytes:
        day, key = self._key
        if day != date:
            key = signing_key(self.credentials.secret_access_key, date, self.region, self.service)
            self._key = (date, key)  # one tuple assignment: threads see the old pair or the new one
        return key

    def sign(self, method: str, url: str, body: bytes = b"",
             headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers that authenticate this request: ``Host``, ``X-Amz-Date``,
        ``X-Amz-Security-Token`` (temporary credentials) and ``Authorization``.  ``url`` is what
        goes on the wire (path already percent-encoded); ``headers`` are further headers to sign,
        sent by the caller as given."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        date = amz_date[:8]
        parts = urlsplit(url)
        added = {"Host": host_header(url), "X-Amz-Date": amz_date}
        token = self.credentials.session_token
        if token:
            added["X-Amz-Security-Token"] = token
        signed = {name.lower(): value for name, value in {**added, **(headers or {})}.items()}
        request = canonical_request(method, parts.path, parts.query, signed, hashlib.sha256(body).hexdigest())
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        proof = signature(self._signing_key(date), string_to_sign(amz_date, scope, request))
        added["Authorization"] = (f"{ALGORITHM} Credential={self.credentials.access_key_id}/{scope}, "
                                  f"SignedHeaders={';'.join(sorted(signed))}, Signature={proof}")
        return added
