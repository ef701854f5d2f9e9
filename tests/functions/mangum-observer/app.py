"""A test function on Mangum: a tiny ASGI app (no framework) that answers,
as its JSON body, the ASGI scope and body Mangum built from the API Gateway
event (payload 1.0 or 2.0), for invoker/tests/consumer_libraries.rs to
compare with what the client sent.
"""

import base64
import json

from mangum import Mangum


async def observer(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), []).append(value.decode("utf-8"))
    observed = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"],
        "root_path": scope["root_path"],
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": headers,
        "body_base64": base64.b64encode(body).decode("ascii"),
    }
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(observed).encode()})


handler = Mangum(observer, lifespan="off")
