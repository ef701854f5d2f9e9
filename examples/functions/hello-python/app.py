"""A Lambda function in Python, written for API Gateway's REST proxy
integration and run on the official runtime client (awslambdaric).

It answers with what it received, so you can see what the gateway sends.
"""

import base64
import json


def handler(event, context):
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    try:
        received = json.loads(body) if body else None
    except ValueError:
        received = body
    params = event.get("pathParameters") or {}
    answer = {
        "runtime": "python",
        "function": context.function_name,
        "requestId": context.aws_request_id,
        "method": event.get("httpMethod"),
        "path": event.get("path"),
        "resource": event.get("resource"),
        "pathParameters": params,
        "queryStringParameters": event.get("queryStringParameters") or {},
        "body": received,
    }
    if "name" in params:
        answer["message"] = "Hello, %s!" % params["name"]
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-runtime": "python"},
        "body": json.dumps(answer),
    }
