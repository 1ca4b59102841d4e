"""SigV4 signing (failover_client.providers.sigv4) against AWS's published test vectors.

The vectors are AWS's SigV4 test suite ("aws-sig-v4-test-suite": credentials AKIDEXAMPLE /
wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1, service "service", time
2015-08-30T12:36:00Z), as carried by AWS's own SDKs:

* aws/aws-sdk-js-v3, packages/signature-v4/src/suite.fixture.ts (each case's request and its
  Authorization header): get-vanilla, get-vanilla-query-order-key-case, get-unreserved, get-utf8,
  get-vanilla-utf8-query, get-header-value-trim, post-vanilla, post-vanilla-query-nonunreserved,
  post-x-www-form-urlencoded, post-x-www-form-urlencoded-parameters, post-sts-header-before;
* awslabs/aws-c-auth, tests/aws-signing-test-suite/v4/get-vanilla-with-session-token
  (context.json for the token, header-signed-request.txt for the signature).

The Bedrock case is protocols.md §7.2's worked example (its canonical request, string to sign and
signature were computed there independently, with botocore and a separate HMAC implementation).
"""

from __future__ import annotations

import calendar

import pytest

from failover_client.errors import InvalidArgumentError
from failover_client.providers.sigv4 import (
    AwsCredentials,
    SigV4Signer,
    canonical_query,
    canonical_request,
    canonical_uri,
    host_header,
    region_from_env,
    signing_key,
    string_to_sign,
)

SUITE_TIME = calendar.timegm((2015, 8, 30, 12, 36, 0))
SUITE_KEYS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
HOST = "https://example.amazonaws.com"
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
STS_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUu"
    "wthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHN"
    "VXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)
C_AUTH_TOKEN = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

# name -> (method, URL as sent, body, further headers to sign, session token, signed headers, signature)
VECTORS = {
    "get-vanilla": ("GET", f"{HOST}/", b"", {}, None, "host;x-amz-date",
                    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    "get-vanilla-query-order-key-case": (
        "GET", f"{HOST}/?Param2=value2&Param1=value1", b"", {}, None, "host;x-amz-date",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    "get-unreserved": ("GET", f"{HOST}/{UNRESERVED}", b"", {}, None, "host;x-amz-date",
                       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    "get-utf8": ("GET", f"{HOST}/\u1234", b"", {}, None, "host;x-amz-date",
                 "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    "get-vanilla-utf8-query": ("GET", f"{HOST}/?%E1%88%B4=bar", b"", {}, None, "host;x-amz-date",
                               "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
    "get-header-value-trim": (
        "GET", f"{HOST}/", b"", {"My-Header1": "value1", "My-Header2": '"a   b   c"'}, None,
        "host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    "post-vanilla": ("POST", f"{HOST}/", b"", {}, None, "host;x-amz-date",
                     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    "post-vanilla-query-nonunreserved": (
        "POST", f"{HOST}/?%40%23%24%25%5E=&%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D", b"", {}, None,
        "host;x-amz-date", "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e"),
    "post-x-www-form-urlencoded": (
        "POST", f"{HOST}/", b"Param1=value1", {"Content-Type": "application/x-www-form-urlencoded"}, None,
        "content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    "post-x-www-form-urlencoded-parameters": (
        "POST", f"{HOST}/", b"Param1=value1", {"Content-Type": "application/x-www-form-urlencoded; charset=utf8"},
        None, "content-type;host;x-amz-date", "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"),
    "post-sts-header-before": ("POST", f"{HOST}/", b"", {}, STS_TOKEN, "host;x-amz-date;x-amz-security-token",
                               "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    "get-vanilla-with-session-token (aws-c-auth)": (
        "GET", f"{HOST}/", b"", {}, C_AUTH_TOKEN, "host;x-amz-date;x-amz-security-token",
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"),
}


def suite_signer(token=None, service="service", at=SUITE_TIME):
    keys = AwsCredentials(SUITE_KEYS.access_key_id, SUITE_KEYS.secret_access_key, token)
    return SigV4Signer(keys, "us-east-1", service, clock=lambda: at)


@pytest.mark.parametrize("name", VECTORS)
def test_aws_test_suite_vectors(name):
    method, url, body, headers, token, signed, expected = VECTORS[name]
    added = suite_signer(token).sign(method, url, body, headers)
    assert added["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={expected}")
    assert added["X-Amz-Date"] == "20150830T123600Z"
    assert added["Host"] == "example.amazonaws.com"
    assert added.get("X-Amz-Security-Token") == token


def test_post_x_www_form_urlencoded_intermediate_steps():
    """The suite also publishes this case's canonical request and string to sign."""
    request = canonical_request("POST", "/", "", {"content-type": "application/x-www-form-urlencoded",
                                                  "host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"},
                                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")
    assert request == ("POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
                       "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
                       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")
    assert string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", request) == (
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281")


def test_signing_key_matches_the_published_derivation():
    """AWS's documented example ("Examples of how to derive a signing key for Signature Version 4")."""
    key = signing_key(SUITE_KEYS.secret_access_key, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


# protocols.md §7.2: a Bedrock Converse request, model id with a colon
BEDROCK_BODY = b'{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"inferenceConfig":{"maxTokens":16}}'
BEDROCK_URL = ("https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0"
               "/converse")


def test_bedrock_worked_example_double_encodes_the_path():
    signer = SigV4Signer(SUITE_KEYS, "us-east-1", "bedrock", clock=lambda: calendar.timegm((2025, 1, 1, 0, 0, 0)))
    added = signer.sign("POST", BEDROCK_URL, BEDROCK_BODY, {"Content-Type": "application/json"})
    assert added["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=c4b292e99fa150ed37df31eb5630ad2db28e3c7416135e0e8eaa0f50e55fb7cd")
    assert canonical_uri("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse") == (
        "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse")
    assert signing_key(SUITE_KEYS.secret_access_key, "20250101", "us-east-1", "bedrock").hex() == (
        "c27e311b7b87de48214ea763bf3f6bd9824a54ab54fdf0033dac588a75009fc1")


def test_the_signature_covers_method_path_body_headers_time_and_secret():
    base = suite_signer().sign("POST", BEDROCK_URL, BEDROCK_BODY)["Authorization"]
    variants = [
        suite_signer().sign("PUT", BEDROCK_URL, BEDROCK_BODY),
        suite_signer().sign("POST", BEDROCK_URL.replace("converse", "converse-stream"), BEDROCK_BODY),
        suite_signer().sign("POST", BEDROCK_URL, BEDROCK_BODY + b" "),
        suite_signer().sign("POST", BEDROCK_URL, BEDROCK_BODY, {"X-Extra": "1"}),
        suite_signer(at=SUITE_TIME + 1).sign("POST", BEDROCK_URL, BEDROCK_BODY),
        SigV4Signer(AwsCredentials("AKIDEXAMPLE", "another-secret"), "us-east-1", "service",
                    clock=lambda: SUITE_TIME).sign("POST", BEDROCK_URL, BEDROCK_BODY),
    ]
    signatures = {v["Authorization"].rsplit("=", 1)[1] for v in variants}
    assert len(signatures) == len(variants) and base.rsplit("=", 1)[1] not in signatures


def test_canonical_query_sorts_by_encoded_key_then_value_and_encodes_strictly():
    assert canonical_query("b=2&a=z&a=y&A=0") == "A=0&a=y&a=z&b=2"
    assert canonical_query("k=a%20b&x=%7e&s=/") == "k=a%20b&s=%2F&x=~"
    assert canonical_query("") == ""


def test_host_header_drops_default_ports_only():
    assert host_header("https://Bedrock-Runtime.us-east-1.amazonaws.com/x") == "bedrock-runtime.us-east-1.amazonaws.com"
    assert host_header("https://h.example:443/") == "h.example"
    assert host_header("http://127.0.0.1:8080/p") == "127.0.0.1:8080"


def test_no_secret_in_reprs():
    keys = AwsCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "session-token-value")
    for text in (repr(keys), str(keys), repr(SigV4Signer(keys, "us-east-1", "bedrock"))):
        assert "wJalrXUtnFEMI" not in text and "session-token-value" not in text
        assert "AKIAIOSFODNN7EXAMPLE" not in text  # only its first and last four characters


def test_credentials_and_region_from_the_environment():
    env = {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "tok",
           "AWS_DEFAULT_REGION": "eu-west-3"}
    assert AwsCredentials.from_env(env) == AwsCredentials("AKIDENV", "secret", "tok")
    assert AwsCredentials.from_env({"AWS_ACCESS_KEY_ID": "AKIDENV"}) is None
    assert region_from_env(env) == "eu-west-3"
    assert region_from_env({**env, "AWS_REGION": "ap-south-1"}) == "ap-south-1"
    assert region_from_env({}) is None


def test_bad_credentials_and_regions_are_refused_before_any_request():
    with pytest.raises(InvalidArgumentError, match="secret access key"):
        AwsCredentials("AKIDEXAMPLE", "")
    for region in ("us-east-1.evil.com", "US-EAST-1", "", "us east"):
        with pytest.raises(InvalidArgumentError, match="region"):
            SigV4Signer(SUITE_KEYS, region, "bedrock")
