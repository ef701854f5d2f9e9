"""What every module shares: the cases and body sizes measured, the fake
Lambda function (its ARN, reply and keys), the streaming case's constants,
logging to stderr, the `Failure` exception and the number formatter."""

from __future__ import annotations

import json
import os
import re
import sys

# The repository: this file is bench/lambdagate_bench/common.py.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"
CLIENT_PATH = "/bench/user/7?firstName=John"
FUNCTION_BODY = '{"ok":true}'
# What the stand-in returns: a Lambda proxy response (API Gateway shape).
STAND_IN_REPLY = json.dumps(
    {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": FUNCTION_BODY},
    separators=(",", ":"),
)
# Dummy keys: the stand-in checks only that requests are SigV4-signed.
KEY_ID = "AKIABENCHMARKEXAMPLE"
SECRET = "benchmarkSecretKeyExampleExampleExample0"

# The filter's default data path (`data_path` in its config) and the other
# one, measured side by side: `lambdagate` is what a user gets by default,
# `lambdagate-<other>` the alternative (issue 13: router vs callout).
DEFAULT_PATH = "callout"
OTHER_PATH = "router"
OTHER_CASE = f"lambdagate-{OTHER_PATH}"

# The authorized case: the default data path behind a Lambda TOKEN
# authorizer whose answer stays cached (a warm cache: the stand-in answers
# the authorizer once per run). Every case sends the same Authorization
# header, so the requests are identical.
AUTH_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench-authorizer"
AUTH_CASE = "lambdagate-authorized"
# The same authorizer without its cache (ttl_seconds: 0): invoked through
# the invoker on every request. What a cache in the invoker would cost at
# least (one more gRPC hop per request), measured, not guessed.
AUTH_NOCACHE_CASE = "lambdagate-authorized-nocache"
AUTH_REPLY = json.dumps(
    {
        "principalId": "bench",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}],
        },
        "context": {"tier": "bench"},
    },
    separators=(",", ":"),
)

# The keyed case: the default data path on a resource that needs an API
# key of a generous usage plan (rate and burst far above any load here),
# the keys and counters in the invoker's folder store: what a key and a
# plan cost, checked in the filter's own call to the invoker (render's
# default). Every case sends the same x-api-key header.
KEYED_CASE = "lambdagate-keyed"
BENCH_API_KEY = "lgk_" + "b" * 64
# The same with the fleet's store: a second invoker whose counters and keys
# are in a redis-server on loopback (Redis's CPU is counted with the
# invoker's).
KEYED_REDIS_CASE = "lambdagate-keyed-redis"
# The same plan and store checked by Envoy's rate-limit filter asking the
# invoker's rate-limit service first (`gateway.usage_check:
# rate_limit_filter`): a second gRPC call per request.
KEYED_RLS_CASE = "lambdagate-keyed-rls"
KEYED_CASES = (KEYED_CASE, KEYED_REDIS_CASE, KEYED_RLS_CASE)

# `--baseline REV`: the `lambdagate` case as another revision builds it (its
# invoker and filter, its own invoker process), so a regression is found in
# one run, interleaved, not across two runs on a machine whose load moves.
# Its configs are the `lambdagate` case's, less what an older build may not
# know (the invoker's `usage` section, the streamed resource).
BASELINE_CASE = "lambdagate-baseline"

# `lambdagate` with what render's connection manager adds to every request
# beyond the edge limits (which every lambdagate case has): the client's
# address from the connection (`use_remote_address`), `x-request-id` in
# the response, `x-forwarded-port`, and the access log with its filters
# (to the Envoy's stdout, a file here). The report's rendered/lambdagate
# ratio is what they cost.
RENDERED_CASE = "lambdagate-rendered"
# Only the access log of those pieces, to tell its cost from the rest.
ACCESS_LOG_CASE = "lambdagate-access-log"

# `lambdagate` with Envoy reaching the invoker over a unix socket instead
# of TCP loopback (issue 23's step 3: which transport the numbers choose).
# Its own invoker, listening on the socket, with the same config.
UDS_CASE = "lambdagate-uds"

# `lambdagate` with the callout as a gRPC call (Envoy's gRPC client, the
# HTTP/2 cluster): a filter config without `callout_cluster`, as
# hand-written configs from before round 12 have. Render's default is
# HTTP/1.1 (`lambdagate_invoker_http1`).
GRPC_CALLOUT_CASE = "lambdagate-grpc-callout"

# The JWT case: the default data path behind a JWT authorizer, verified by
# Envoy's jwt_authn with keys from a JWKS the stand-in serves. The bench
# makes an ES256 key per run; every case sends the same token.
JWT_CASE = "lambdagate-jwt"
JWT_ISSUER = "https://bench.example.test/"
JWT_AUDIENCE = "bench"
JWKS_PATH = "/bench-jwks.json"


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _make_jwt() -> tuple[str, dict]:
    """An ES256 token valid for a day, and the JWKS that verifies it."""
    import time

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "bench",
        "x": _b64url(numbers.x.to_bytes(32, "big")), "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    header = _b64url(json.dumps({"alg": "ES256", "typ": "JWT", "kid": "bench"}).encode())
    now = int(time.time())
    claims = {"iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "sub": "bench", "iat": now, "exp": now + 86400, "scope": "bench"}
    payload = _b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
    signature = _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return f"{header}.{payload}.{signature}", {"keys": [jwk]}


JWT, JWKS = _make_jwt()
# Sent by every case (the TOKEN authorizer's stand-in accepts anything).
AUTH_TOKEN = f"Bearer {JWT}"


def jwt_payload_header(issuer: str) -> str:
    """The header jwt_authn forwards a verified payload in: the same
    derivation as lambdagate_core::auth::authorizer::jwt_payload_header
    (FNV-1a, 10 base-36 digits); a mismatch shows as 401 in the check."""
    h = 0xCBF29CE484222325
    for byte in issuer.encode() + b"\0":
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(10):
        out += digits[h % 36]
        h //= 36
    return "x-lambdagate-jwt-" + out


CASES = {
    "floor": "Envoy proxy to the stand-in (floor)",
    "native": "native aws_lambda, JSON event",
    "native-passthrough": "native aws_lambda, passthrough",
    "lambdagate": f"lambdagate wasm filter + invoker, {DEFAULT_PATH} data path (the default)",
    OTHER_CASE: f"lambdagate wasm filter + invoker, {OTHER_PATH} data path",
    AUTH_CASE: f"lambdagate, {DEFAULT_PATH} data path, behind a Lambda TOKEN authorizer (cache warm)",
    AUTH_NOCACHE_CASE: f"lambdagate, {DEFAULT_PATH} data path, the same authorizer invoked on every request (ttl 0)",
    JWT_CASE: f"lambdagate, {DEFAULT_PATH} data path, behind a JWT authorizer (Envoy's jwt_authn)",
    KEYED_CASE: f"lambdagate, {DEFAULT_PATH} data path, API key and usage plan (checked in the filter's call, folder store)",
    KEYED_RLS_CASE: f"lambdagate, {DEFAULT_PATH} data path, API key and usage plan (Envoy's rate-limit filter, folder store)",
    KEYED_REDIS_CASE: f"lambdagate, {DEFAULT_PATH} data path, API key and usage plan, Redis store (its CPU with the invoker's)",
    RENDERED_CASE: f"lambdagate, {DEFAULT_PATH} data path, with render's per-request pieces (use_remote_address, request id and port headers, access log)",
    ACCESS_LOG_CASE: f"lambdagate, {DEFAULT_PATH} data path, with render's access log only",
    BASELINE_CASE: "lambdagate as --baseline REV builds it (its own invoker and filter)",
    UDS_CASE: f"lambdagate, {DEFAULT_PATH} data path, Envoy to the invoker over a unix socket (not TCP loopback)",
    GRPC_CALLOUT_CASE: "lambdagate, callout data path as a gRPC call (no callout_cluster), not render's HTTP/1.1",
}


def is_lambdagate(case: str) -> bool:
    """The cases that run the lambdagate filter and send to the invoker."""
    return case.startswith("lambdagate")


def data_path_of(case: str) -> str:
    return OTHER_PATH if case == OTHER_CASE else DEFAULT_PATH

# Load settings per body size. Saturation: wrk closed loop on `sat_conns`
# connections. Latency: `lat_conns` connections paced together to `lat_rate`
# requests/s (a wrk Lua `delay()` on a fixed schedule, see wrk_script).
SIZES = {
    "1KB": {"bytes": 1024, "sat_conns": 32, "lat_conns": 16, "lat_rate": 2000},
    # Not measured by default: where the two data paths cross.
    "64KB": {"bytes": 64 * 1024, "sat_conns": 16, "lat_conns": 8, "lat_rate": 500},
    # Not measured by default: the invoker's offload threshold (256 KiB).
    "256KB": {"bytes": 256 * 1024, "sat_conns": 8, "lat_conns": 4, "lat_rate": 100},
    "1MB": {"bytes": 1024 * 1024, "sat_conns": 4, "lat_conns": 4, "lat_rate": 25},
}

# The streaming case: one client path for both cases (`floor` serves the plain
# body through Envoy, `lambdagate` streams it from InvokeWithResponseStream).
STREAM_PATH = "/bench/stream"
STREAM_PLAIN_PATH = "/bench-stream-plain"  # the stand-in's plain copy (floor)
STREAM_CASES = ("floor", "lambdagate")
STREAM_CHUNK = 64 * 1024
STREAM_CHUNKS = 160
STREAM_BYTES = STREAM_CHUNK * STREAM_CHUNKS  # 10 MiB of body
# Lambda's HTTP integration prelude: the client's status and headers, then 8 NULs.
STREAM_PRELUDE = b'{"statusCode":200,"headers":{"content-type":"application/octet-stream"}}' + b"\0" * 8
STREAM_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    """Set-up or start-up failed: the run cannot measure anything."""



def fmt(v, spec: str) -> str:
    if v is None:
        width = re.match(r"\d*", spec).group(0)
        return format("-", ">" + width)
    return format(v, spec)
