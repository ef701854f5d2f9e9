"""The Lambda stand-in: one nginx process answering Invoke and
InvokeWithResponseStream as Lambda would (only SigV4-signed requests, only
once the body is read), the 10 MiB event-stream file it serves for the
streaming case (and the same body as a plain file for the floor), starting
it, and reading its connection counter (stub_status)."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import zlib

from .common import (
    STAND_IN_REPLY,
    AUTH_REPLY,
    JWKS,
    JWKS_PATH,
    STREAM_CHUNK,
    STREAM_CHUNKS,
    STREAM_CONTENT_TYPE,
    STREAM_PLAIN_PATH,
    STREAM_PRELUDE,
    Failure,
)
from .procs import Procs, http, wait_until

# ---------------------------------------------------------------- the stream


def _event_header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + struct.pack(">BH", 7, len(v)) + v  # 7: string


def event_frame(event_type: str, payload: bytes) -> bytes:
    """One `application/vnd.amazon.eventstream` message, as Lambda sends them:
    total length, headers length, prelude CRC32, headers, payload, message CRC32."""
    headers = (
        _event_header(":message-type", "event")
        + _event_header(":event-type", event_type)
        + _event_header(":content-type", "application/octet-stream")
    )
    prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def stream_chunk(i: int) -> bytes:
    # Numbered chunks (no NUL byte): a lost or reordered one changes the body.
    return f"[chunk {i:03d} of {STREAM_CHUNKS}]".encode().ljust(STREAM_CHUNK, b".")


def write_stream_files(work: str) -> tuple[str, str]:
    """The stand-in's two answers for the streaming case: the event-stream body
    of InvokeWithResponseStream (prelude chunk, 160 chunks of 64 KiB,
    InvokeComplete `{}`) and the same 10 MiB of body as a plain file."""
    events, plain = os.path.join(work, "stream.eventstream"), os.path.join(work, "stream-body.bin")
    with open(events, "wb") as ev, open(plain, "wb") as pl:
        ev.write(event_frame("PayloadChunk", STREAM_PRELUDE))
        for i in range(STREAM_CHUNKS):
            chunk = stream_chunk(i)
            ev.write(event_frame("PayloadChunk", chunk))
            pl.write(chunk)
        ev.write(event_frame("InvokeComplete", b"{}"))
    return events, plain


def stream_body() -> bytes:
    return b"".join(stream_chunk(i) for i in range(STREAM_CHUNKS))


# ---------------------------------------------------------------- nginx


def nginx_conf(work: str, port: int) -> str:
    tmp = os.path.join(work, "nginx-tmp")
    os.makedirs(tmp, exist_ok=True)
    # nginx unescapes \" and \\ inside quoted strings: escape the reply once more.
    reply = STAND_IN_REPLY.replace("\\", "\\\\").replace("'", "\\'")
    auth_reply = AUTH_REPLY.replace("\\", "\\\\").replace("'", "\\'")
    # The JWT case's keys, for Envoy's jwt_authn.
    with open(os.path.join(work, "jwks.json"), "w") as f:
        json.dump(JWKS, f)
    return f"""\
# The Lambda stand-in: one nginx process, no access log, never closes an idle
# keep-alive connection first (so every new connection is the client's doing).
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  client_max_body_size 16m;
  keepalive_timeout 3600s;
  keepalive_requests 1000000000;
  # A literal "$" in a string: nginx would read $LATEST as a variable.
  geo $dollar {{ default "$"; }}
  # Reply only once the whole request body has been read, as Lambda does.
  # `return` would answer at once, before the body: Envoy then resets an
  # upstream connection whose request it is still streaming (the floor case
  # with 1 MB bodies), which is neither realistic nor cheap to recover from.
  # So: the mirror module reads the body (mirror_request_body on) before the
  # content phase; empty_gif refuses the POST with 405 without any syscall;
  # error_page turns that into the fixed reply.
  client_body_buffer_size 16m;
  default_type application/json;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /nginx_status {{ stub_status; }}
    location = /_read_body {{ internal; return 204; }}
    # The authorized case's authorizer: a policy allowing everything (its
    # location comes first: regex locations match in order).
    location ~ ^/2015-03-31/functions/[^/]+:bench-authorizer/invocations$ {{
      if ($http_authorization !~ "^AWS4-HMAC-SHA256 ") {{
        return 403 '{{"Message":"stand-in: request is not SigV4-signed"}}';
      }}
      add_header x-amzn-RequestId $request_id;
      return 200 '{auth_reply}';
    }}
    # Lambda Invoke. The invoker URL-encodes the ARN (%3A); nginx matches the
    # decoded path, so one location serves both the invoker and Envoy's filter.
    location ~ ^/2015-03-31/functions/[^/]+/invocations$ {{
      if ($request_method != POST) {{ return 405 '{{"Message":"stand-in: method not allowed"}}'; }}
      if ($http_authorization !~ "^AWS4-HMAC-SHA256 ") {{
        return 403 '{{"Message":"stand-in: request is not SigV4-signed"}}';
      }}
      mirror /_read_body;
      mirror_request_body on;
      empty_gif;
      error_page 405 =200 @invoke_reply;
    }}
    location @invoke_reply {{
      add_header X-Amz-Executed-Version "${{dollar}}LATEST";
      add_header x-amzn-RequestId $request_id;
      return 200 '{reply}';
    }}
    # InvokeWithResponseStream (the streaming case): the same checks and the
    # same body reading, then a fixed 10 MiB event stream from a file. The
    # error_page goes to a URI, not a named location: nginx then makes the
    # request a GET, which the static module serves (it refuses POST with 405).
    location ~ ^/2021-11-15/functions/[^/]+/response-streaming-invocations$ {{
      if ($request_method != POST) {{ return 405 '{{"Message":"stand-in: method not allowed"}}'; }}
      if ($http_authorization !~ "^AWS4-HMAC-SHA256 ") {{
        return 403 '{{"Message":"stand-in: request is not SigV4-signed"}}';
      }}
      mirror /_read_body;
      mirror_request_body on;
      empty_gif;
      error_page 405 =200 /_stream_reply;
    }}
    location = /_stream_reply {{
      internal;
      types {{ }}
      default_type {STREAM_CONTENT_TYPE};
      add_header x-amzn-RequestId $request_id;
      alias {work}/stream.eventstream;
    }}
    # The floor's baseline for the streaming case: the same body, a plain file.
    # (sendfile stays off, nginx's default: it writes 32 KiB at a time, so the
    # floor Envoy passes the head on sooner than after reading megabytes.)
    location = {JWKS_PATH} {{
      types {{ }}
      default_type application/json;
      alias {work}/jwks.json;
    }}
    location = {STREAM_PLAIN_PATH} {{
      types {{ }}
      default_type application/octet-stream;
      alias {work}/stream-body.bin;
    }}
    location / {{ return 404 '{{"Message":"stand-in: unknown path"}}'; }}
  }}
}}
"""


def start(work: str, port: int, nginx: str, procs: Procs) -> subprocess.Popen:
    """Write the stream files and nginx.conf, start nginx, wait until it answers."""
    # nginx, and the files it serves for the streaming case
    write_stream_files(work)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(work, port))
    proc = procs.start("nginx", [nginx, "-p", work, "-c", conf])
    wait_until(
        "nginx stand-in",
        lambda: http("GET", stub_url(port))[0] == 200,
        proc,
        procs,
        "nginx",
    )
    return proc


def stub_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/nginx_status"


def nginx_accepts(port: int) -> int:
    """Connections nginx has accepted since it started (stub_status `accepts`)."""
    _, _, body = http("GET", stub_url(port))
    m = re.search(rb"\n\s*(\d+)\s+(\d+)\s+(\d+)", body)
    if not m:
        raise Failure(f"cannot read nginx stub_status: {body!r}")
    return int(m.group(1))
