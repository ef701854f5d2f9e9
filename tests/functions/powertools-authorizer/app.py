"""A Lambda authorizer written on Powertools for AWS Lambda (Python)'s
authorizer event classes and response builders, unchanged from how it
would run behind API Gateway; and the integration it guards, which answers
with what API Gateway's authorizer left in its event.

The token (TOKEN: `Bearer <word>`) or the identity (REQUEST) picks the
answer:

    allow         allow every route, with a context (string, number, bool)
    deny          deny every route (a policy; a simple response says false)
    mixed         allow every route, deny this one explicitly
    other         allow one other route only
    unauthorized  fail with "Unauthorized" (API Gateway's 401 convention)
    throw         fail with another error
    slow          sleep past the authorizer's timeout
    garbage       answer a string
    nested        a context holding an object (a REST API refuses it)
    big           a 1 MB context
    key:<key>     allow every route, naming <key> as the caller's API key
                  (usageIdentifierKey, for a usage plan)

Every invocation appends one line to the file named by $INVOCATION_LOG, so
that the test counts invocations where they happen.
"""

import json
import os
import time

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerResponseV2,
    APIGatewayAuthorizerTokenEvent,
    parse_api_gateway_arn,
)


def _count(what):
    with open(os.environ["INVOCATION_LOG"], "a", encoding="utf-8") as log:
        log.write(what + "\n")


def _policy(word, arn):
    """The IAM policy answer for `word`, for the method or route ARN."""
    if word == "unauthorized":
        raise Exception("Unauthorized")
    if word == "throw":
        raise RuntimeError("the authorizer broke")
    if word == "slow":
        time.sleep(3)
    if word == "garbage":
        return "not a policy"
    context = {"tier": "gold", "level": 3, "vip": True}
    if word == "nested":
        context = {"user": {"id": 7}}
    if word == "big":
        context = {"blob": "x" * (1024 * 1024)}
    usage_key = word.removeprefix("key:") if word.startswith("key:") else None
    response = APIGatewayAuthorizerResponse.from_route_arn(
        arn,
        principal_id="user-with-key" if usage_key else f"user-{word}",
        context=context,
        usage_identifier_key=usage_key,
    )
    route = parse_api_gateway_arn(arn)
    if word in ("allow", "slow", "nested", "big") or usage_key is not None:
        response.allow_all_routes()
    elif word == "deny":
        response.deny_all_routes()
    elif word == "mixed":
        response.allow_all_routes()
        response.deny_route(route.http_method, route.resource)
    elif word == "other":
        response.allow_route("DELETE", "somewhere/else")
    else:
        response.deny_all_routes()
    return response.asdict()


def handler(event, context):
    """TOKEN and REQUEST authorizers, REST (1.0) and HTTP API (2.0)."""
    _count("authorizer")
    if event.get("type") == "TOKEN":
        token = APIGatewayAuthorizerTokenEvent(event)
        word = token.authorization_token.removeprefix("Bearer ")
        return _policy(word, token.method_arn)
    if event.get("version") == "2.0":
        request = APIGatewayAuthorizerEventV2(event)
        word = request.identity_source[0]
        if os.environ.get("SIMPLE_RESPONSES") == "1":
            if word not in ("allow", "deny"):
                return _policy(word, request.route_arn)
            return APIGatewayAuthorizerResponseV2(
                authorize=word == "allow",
                context={"tier": "gold", "level": 3, "scopes": ["read", "write"]},
            ).asdict()
        return _policy(word, request.route_arn)
    request = APIGatewayAuthorizerRequestEvent(event)
    word = request.get_header_value("x-token", default_value="")
    return _policy(word, request.method_arn)


def integration(event, context):
    """The guarded function: what the authorizer left in its event."""
    _count("integration")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "authorizer": event["requestContext"].get("authorizer"),
                "body": event.get("body"),
            }
        ),
    }


def own_cors(event, context):
    """An integration that sets CORS headers of its own (the gateway's
    CORS policy must replace them, not double them)."""
    _count("own_cors")
    return {
        "statusCode": 200,
        "headers": {
            "content-type": "application/json",
            "access-control-allow-origin": "*",
        },
        "body": "{}",
    }
