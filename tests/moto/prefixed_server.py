"""moto server mounted under a URL path prefix: what an AWS-compatible
endpoint behind a path-based reverse proxy looks like to a client, e.g.
`endpoint_url: http://127.0.0.1:PORT/lambda-proxy`. Requests outside the
prefix (fixture setup, /moto-api) reach moto as usual.

moto takes both the operation (e.g. Invoke) and the URL it checks SigV4
signatures against from one value, the request line's path (RAW_URI), so
it cannot do both under a prefix. Hence two modes:

- default: the prefix is removed before moto sees the request (PATH_INFO
  and RAW_URI), so every operation works. Signatures, if IAM checks are on,
  would be checked without the prefix: use this mode with IAM checks off,
  to show requests go to the prefixed URL.
- --signed-path-as-received: only PATH_INFO loses the prefix; moto checks
  signatures against the path as received, prefix included, as AWS checks
  the path a client sent. A good signature then gets past the signature
  check and is refused as AccessDenied for action `lambda:None` (moto could
  not name the operation), a bad one as SignatureDoesNotMatch.

Usage: python prefixed_server.py HOST PORT PREFIX [--signed-path-as-received]
"""

import os
import sys

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main():
    host, port, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3].rstrip("/")
    signed_path_as_received = "--signed-path-as-received" in sys.argv[4:]
    os.environ.setdefault("MOTO_PORT", str(port))
    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(prefix + "/"):
            environ["PATH_INFO"] = path[len(prefix):]
            raw = environ.get("RAW_URI", "")
            if not signed_path_as_received and raw.startswith(prefix + "/"):
                environ["RAW_URI"] = raw[len(prefix):]
        return moto(environ, start_response)

    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
