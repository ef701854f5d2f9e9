"""A custom Lambda runtime (a `bootstrap`, as `provided.al2023` functions
have) that answers in the Runtime API's streaming response mode, written to
AWS's custom-runtime documentation: `Lambda-Runtime-Function-Response-Mode:
streaming`, a chunked body starting with the HTTP-integration prelude, and
a failure after the first bytes reported in the
`Lambda-Runtime-Function-Error-Type` / `-Body` trailers. No official
runtime client for Python streams, and `lambda_runtime` (Rust) writes its
mid-stream errors into the body instead of trailers, so this is the
function that exercises the trailers.

An event whose `rawPath` ends in `/fail` fails after two parts."""

import base64
import http.client
import json
import os
import socket
import time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.rsplit(":", 1)


def next_invocation():
    conn = http.client.HTTPConnection(HOST, int(PORT))
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    response = conn.getresponse()
    event = json.loads(response.read() or b"{}")
    return response.getheader("lambda-runtime-aws-request-id"), event


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream_response(request_id: str, event: dict) -> None:
    fail = event.get("rawPath", "").endswith("/fail")
    sock = socket.create_connection((HOST, int(PORT)))
    head = (
        f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
        f"Host: {API}\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Content-Type: application/vnd.awslambda.http-integration-response\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
        "\r\n"
    )
    sock.sendall(head.encode())
    prelude = json.dumps({"statusCode": 200, "headers": {"content-type": "text/plain"}})
    sock.sendall(chunk(prelude.encode() + b"\0" * 8))
    for part in (1, 2):
        sock.sendall(chunk(f"part {part}\n".encode()))
        time.sleep(0.1)
    if fail:
        detail = base64.b64encode(b"the upstream feed closed").decode()
        sock.sendall(
            b"0\r\n"
            b"Lambda-Runtime-Function-Error-Type: Runtime.FeedClosed\r\n"
            + f"Lambda-Runtime-Function-Error-Body: {detail}\r\n".encode()
            + b"\r\n"
        )
    else:
        sock.sendall(chunk(b"part 3\n") + b"0\r\n\r\n")
    sock.settimeout(10)
    sock.recv(4096)  # the Runtime API's 202
    sock.close()


while True:
    request_id, event = next_invocation()
    stream_response(request_id, event)
