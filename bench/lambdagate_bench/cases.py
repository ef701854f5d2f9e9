"""The five cases: the Envoy config of each (floor, native,
native-passthrough, lambdagate on its default data path, lambdagate on the
other one) and the invoker's config; `Stack` starts the stand-in, the
invoker and one Envoy per case, checks one request (and one stream) through
each, and reads the counters the checks compare (Envoy admin stats, the
invoker's /metrics, nginx's accepted connections)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.parse

from . import standin
from .common import (
    ARN,
    AUTH_ARN,
    AUTH_CASE,
    AUTH_NOCACHE_CASE,
    AUTH_TOKEN,
    BENCH_API_KEY,
    JWKS_PATH,
    JWT_AUDIENCE,
    JWT_CASE,
    JWT_ISSUER,
    KEYED_CASE,
    KEYED_CASES,
    KEYED_REDIS_CASE,
    KEYED_RLS_CASE,
    BASELINE_CASE,
    RENDERED_CASE,
    ACCESS_LOG_CASE,
    UDS_CASE,
    GRPC_CALLOUT_CASE,
    jwt_payload_header,
    CLIENT_PATH,
    FUNCTION_BODY,
    KEY_ID,
    SECRET,
    STAND_IN_REPLY,
    STREAM_CASES,
    STREAM_PATH,
    STREAM_PLAIN_PATH,
    Failure,
    data_path_of,
    is_lambdagate,
    log,
)
from .load import request_body
from .procs import Procs, free_port, http, wait_until

# ---------------------------------------------------------------- configs


def _router_body_bytes() -> int:
    """The callout path's `router_body_bytes` as `lambdagate render` writes
    it (the rendered example's filter config): bodies from this size take
    the router path, so the `lambdagate` case runs what render's users run."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "envoy", "dynamic", "ecds", "lambdagate.yaml")) as f:
        found = re.search(r'router_body_bytes\\?":(\d+)', f.read())
    if not found:
        raise Failure("envoy/dynamic/ecds/lambdagate.yaml has no router_body_bytes: is it what render writes?")
    return int(found.group(1))


def _rendered() -> dict:
    """The rendered example (envoy/dynamic/envoy.yaml, which a test holds
    equal to render's output)."""
    import yaml  # PyYAML: only the lambdagate cases need it

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "envoy", "dynamic", "envoy.yaml")) as f:
        return yaml.safe_load(f)


def _rendered_invoker_clusters(address: dict) -> list[dict]:
    """The invoker's clusters as render writes them (HTTP/2 for gRPC and
    the router path, HTTP/1.1 for callouts), at `address`."""
    clusters = [
        c for c in _rendered()["static_resources"]["clusters"]
        if c["name"] in ("lambdagate_invoker", "lambdagate_invoker_http1")
    ]
    if len(clusters) != 2:
        raise Failure("envoy/dynamic/envoy.yaml lacks render's two invoker clusters")
    for c in clusters:
        c["load_assignment"]["endpoints"] = [{"lb_endpoints": [{"endpoint": {"address": address}}]}]
    return clusters


def _edge_limits() -> dict:
    """The edge limits `lambdagate render` writes by default, taken from the
    rendered example (envoy/dynamic/envoy.yaml, which a test holds equal to
    render's output): the lambdagate cases run under them, so the ratios
    show what they cost the data path."""
    rendered = _rendered()
    listener = rendered["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    edge_fields = (
        "request_headers_timeout",
        "common_http_protocol_options",
        "http2_protocol_options",
        "normalize_path",
        "merge_slashes",
        "path_with_escaped_slashes_action",
        "local_reply_config",
    )
    # What render adds to every request beyond the edge limits: the
    # client's address from the connection, the request id and port
    # headers, and the access log (the `lambdagate-rendered` case).
    request_fields = (
        "use_remote_address",
        "xff_num_trusted_hops",
        "always_set_request_id_in_response",
        "append_x_forwarded_port",
        "access_log",
    )
    return {
        "overload_manager": rendered["overload_manager"],
        "buffer": listener["per_connection_buffer_limit_bytes"],
        "manager": {k: manager[k] for k in edge_fields},
        "request_pieces": {k: manager[k] for k in request_fields},
        "invoker_route_limit": routes[0]["request_body_buffer_limit"],
        "catch_all": routes[-1],
    }


def _listener(port: int, route: str, http_filters: str, buffer: int = 7340032, manager_extra: str = "") -> str:
    return f"""\
  listeners:
  - name: bench
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    per_connection_buffer_limit_bytes: {buffer}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
{manager_extra}          route_config:
            validate_clusters: false
            virtual_hosts:
            - name: bench
              domains: ["*"]
              routes:
{route}
          http_filters:
{http_filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""


def _stand_in_cluster(port: int, lambda_metadata: bool) -> str:
    meta = (
        "    metadata: {filter_metadata: {com.amazonaws.lambda: {egress_gateway: true}}}\n" if lambda_metadata else ""
    )
    return f"""\
  - name: stand_in
    type: STATIC
    connect_timeout: 1s
    per_connection_buffer_limit_bytes: 7340032
{meta}    load_assignment:
      cluster_name: stand_in
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
"""


def envoy_conf(case: str, ports: dict, wasm: str) -> str:
    head = f"""\
# bench/run, case {case}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {ports['admin']}}}}}
static_resources:
"""
    if case == "floor":
        # The streaming case's baseline: the plain 10 MiB body, proxied. Then
        # the same client request, rewritten to the Invoke path; the
        # Authorization header only satisfies the stand-in's signature check.
        route = f"""\
              - match: {{path: "{STREAM_PATH}"}}
                route:
                  cluster: stand_in
                  timeout: 60s
                  prefix_rewrite: "{STREAM_PLAIN_PATH}"
              - match: {{prefix: "/"}}
                request_headers_to_add:
                - header: {{key: authorization, value: "AWS4-HMAC-SHA256 floor-case-unsigned"}}
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
                route:
                  cluster: stand_in
                  timeout: 60s
                  regex_rewrite:
                    pattern: {{regex: "^.*$"}}
                    substitution: "/2015-03-31/functions/{ARN}/invocations"
"""
        return head + _listener(ports["listen"], route, "") + "  clusters:\n" + _stand_in_cluster(ports["nginx"], False)
    if case in ("native", "native-passthrough"):
        passthrough = "true" if case == "native-passthrough" else "false"
        route = """\
              - match: {prefix: "/"}
                route: {cluster: stand_in, timeout: 60s}
"""
        filters = f"""\
          - name: envoy.filters.http.aws_lambda
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.aws_lambda.v3.Config
              arn: "{ARN}"
              payload_passthrough: {passthrough}
"""
        return head + _listener(ports["listen"], route, filters) + "  clusters:\n" + _stand_in_cluster(ports["nginx"], True)
    if is_lambdagate(case):
        data_path = data_path_of(case)
        # The route to the invoker, always, as `lambdagate render` writes it:
        # the router data path takes it, and so do streamed resources
        # (`response_mode: stream`) whatever the data path.
        # The edge limits as render writes them (JSON is YAML too), unless
        # LAMBDAGATE_BENCH_EDGE_LIMITS=off asks for the config without them
        # (what the lambdagate cases ran before the limits), to compare.
        if os.environ.get("LAMBDAGATE_BENCH_EDGE_LIMITS") == "off":
            edge = {"overload_manager": None, "buffer": 7340032, "manager": {}, "request_pieces": {}, "invoker_route_limit": 7340032,
                    "catch_all": {"match": {"prefix": "/"}, "direct_response": {"status": 404}}}
        else:
            edge = _edge_limits()
        invoker_route = f"""\
              - match:
                  path: "/lambdagate.v1.Invoker/InvokeHttp"
                  headers: [{{name: lambdagate-forwarded, present_match: true}}]
                route:
                  cluster: lambdagate_invoker
                  timeout: 0s
                request_body_buffer_limit: {edge['invoker_route_limit']}
"""
        route = invoker_route
        if case == KEYED_RLS_CASE:
            # As render writes a keyed API's route for Envoy's rate-limit
            # filter: the usage descriptors on a cluster that exists
            # (lambdagate_held, empty).
            route += """\
              - match: {path_separated_prefix: /bench}
                route:
                  cluster: lambdagate_held
                  rate_limits:
                  - actions:
                    - request_headers: {header_name: ":method", descriptor_key: lambdagate_method}
                    - request_headers: {header_name: ":path", descriptor_key: lambdagate_path}
                  - actions:
                    - request_headers: {header_name: x-api-key, descriptor_key: lambdagate_api_key}
"""
        route += f"              - {json.dumps(edge['catch_all'])}\n"
        manager = dict(edge["manager"])
        if case == RENDERED_CASE:
            manager.update(edge["request_pieces"])
        if case == ACCESS_LOG_CASE and "access_log" in edge["request_pieces"]:
            manager["access_log"] = edge["request_pieces"]["access_log"]
        manager_extra = "".join(f"          {k}: {json.dumps(v)}\n" for k, v in manager.items())
        if edge["overload_manager"]:
            head = f"overload_manager: {json.dumps(edge['overload_manager'])}\n" + head
        filter_config = json.dumps(
            {
                "invoker_cluster": "lambdagate_invoker",
                "data_path": data_path,
                # As render writes it (not for a baseline build, which may
                # predate it).
                **(
                    {"router_body_bytes": _router_body_bytes()}
                    if data_path == "callout" and case != BASELINE_CASE
                    else {}
                ),
                # As render writes it: callouts as HTTP/1.1 on their own
                # cluster (not for a baseline build, which may predate it).
                **(
                    {"callout_cluster": "lambdagate_invoker_http1"}
                    if case not in (BASELINE_CASE, GRPC_CALLOUT_CASE)
                    else {}
                ),
                "apis": [
                    {
                        "name": "bench",
                        "version": "v1",
                        "context": "/bench",
                        "endpoint": "bench",
                        **(
                            {
                                "authorizer": "bench",
                                "authorizers": [
                                    {
                                        "name": "bench",
                                        "type": "token",
                                        "arn": AUTH_ARN,
                                        "ttl_seconds": 0 if case == AUTH_NOCACHE_CASE else 3600,
                                    }
                                ],
                            }
                            if case in (AUTH_CASE, AUTH_NOCACHE_CASE)
                            else {
                                "authorizer": "bench",
                                "authorizers": [
                                    {
                                        "name": "bench",
                                        "type": "jwt",
                                        "issuer": JWT_ISSUER,
                                        "audiences": [JWT_AUDIENCE],
                                        "jwks_uri": f"http://127.0.0.1:{ports['nginx']}{JWKS_PATH}",
                                    }
                                ],
                            }
                            if case == JWT_CASE
                            else {}
                        ),
                        "resources": [
                            {
                                "verb": "POST",
                                "uri_template": "/user/{id}",
                                "arn": ARN,
                                "timeout_seconds": 30,
                                **(
                                    {"api_key_required": True}
                                    if case in KEYED_CASES and case != KEYED_RLS_CASE
                                    else {}
                                ),
                            },
                            # The streaming case: GET /bench/stream (not for
                            # a baseline build, which may predate streaming).
                            *(
                                []
                                if case == BASELINE_CASE
                                else [
                                    {
                                        "verb": "GET",
                                        "uri_template": STREAM_PATH[len("/bench"):],
                                        "arn": ARN,
                                        "response_mode": "stream",
                                        "timeout_seconds": 30,
                                    }
                                ]
                            ),
                        ],
                    }
                ],
            }
        )
        # The JWT case: Envoy's filters before lambdagate's, as render writes
        # them (verify only; the payload header a client sent removed first).
        jwt_filters = ""
        if case == JWT_CASE:
            header = jwt_payload_header(JWT_ISSUER)
            jwt_filters = f"""\
          - name: envoy.filters.http.header_mutation
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
              mutations: {{request_mutations: [{{remove: {header}}}]}}
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                issuer-0:
                  issuer: "{JWT_ISSUER}"
                  audiences: ["{JWT_AUDIENCE}"]
                  remote_jwks:
                    http_uri: {{uri: "http://127.0.0.1:{ports['nginx']}{JWKS_PATH}", cluster: stand_in_jwks, timeout: 5s}}
                    cache_duration: 600s
                  from_headers: [{{name: authorization, value_prefix: "Bearer "}}]
                  forward: true
                  forward_payload_header: {header}
                  jwt_cache_config: {{jwt_cache_size: 1000}}
              rules: [{{match: {{prefix: /}}, requires: {{requires_any: {{requirements: [{{provider_name: issuer-0}}, {{allow_missing_or_failed: {{}}}}]}}}}}}]
"""
        if case == KEYED_RLS_CASE:
            jwt_filters += """\
          - name: envoy.filters.http.ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
              domain: lambdagate
              failure_mode_deny: true
              disable_x_envoy_ratelimited_header: true
              timeout: 0.700s
              rate_limit_service:
                grpc_service: {envoy_grpc: {cluster_name: lambdagate_invoker}}
                transport_api_version: V3
"""
        filters = jwt_filters + f"""\
          - name: lambdagate
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: lambdagate
                root_id: lambdagate
                allow_on_headers_stop_iteration: true
                failure_policy: FAIL_RELOAD
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: {wasm}}}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {json.dumps(filter_config)}
"""
        invoker_address = (
            {"pipe": {"path": ports["invoker_socket"]}}
            if case == UDS_CASE
            else {"socket_address": {"address": "127.0.0.1", "port_value": ports["invoker"]}}
        )
        cluster = "".join(f"  - {json.dumps(c)}\n" for c in _rendered_invoker_clusters(invoker_address))
        if case == KEYED_RLS_CASE:
            cluster += """\
  - name: lambdagate_held
    type: STATIC
    connect_timeout: 1s
    load_assignment: {cluster_name: lambdagate_held, endpoints: []}
"""
        if case == JWT_CASE:
            cluster += f"""\
  - name: stand_in_jwks
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: stand_in_jwks
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {{socket_address: {{address: 127.0.0.1, port_value: {ports['nginx']}}}}}
"""
        return (
            head
            + _listener(ports["listen"], route, filters, edge["buffer"], manager_extra)
            + "  clusters:\n"
            + cluster
        )
    raise ValueError(case)


def invoker_conf(ports: dict, store: str | None = "{path: usage}", listen: str | None = None) -> str:
    """The invoker's config; `store: None` leaves out the usage section (a
    baseline build may not know it); `listen` replaces the TCP port."""
    text = f"""\
# bench/run: the invoker, stored keys from the environment, Lambda = the stand-in.
listen: {listen or f"127.0.0.1:{ports['invoker']}"}
admin_listen: 127.0.0.1:{ports['invoker_admin']}
default_endpoint: bench
endpoints:
  bench:
    access_method: stored
    region: us-east-1
    credentials:
      access_key_id: {{env: BENCH_LAMBDA_KEY_ID}}
      secret_access_key: {{env: BENCH_LAMBDA_SECRET}}
    endpoint_url: http://127.0.0.1:{ports['nginx']}
    allow:
      - {ARN}
      - {AUTH_ARN}
"""
    if store is None:
        return text
    return text + f"""\
# The keyed case's plan: far above any load here, so only its cost shows.
usage:
  store: {store}
  plans:
    - {{name: bench, rate: 1000000, burst: 1000000, apis: [bench]}}
  apis:
    - name: bench
      context: /bench
      rest: true
      resources:
        - {{verb: POST, uri_template: "/user/{{id}}", api_key_required: true}}
        - {{verb: GET, uri_template: "{STREAM_PATH[len('/bench'):]}", api_key_required: false}}
"""


def write_bench_key(work: str) -> dict:
    """The bench's key in the folder store, as `lambdagate keys create`
    writes it (only its SHA-256), so the load's header is known in advance."""
    import hashlib

    digest = hashlib.sha256(BENCH_API_KEY.encode()).hexdigest()
    folder = os.path.join(work, "usage")
    os.makedirs(folder, exist_ok=True)
    record = {"id": digest[:10], "hash": digest, "name": "bench", "plans": ["bench"], "created": 0}
    with open(os.path.join(folder, "keys.json"), "w") as f:
        json.dump({"keys": [record]}, f)
    return record


def start_redis_store(work: str, port: int, procs: Procs) -> subprocess.Popen:
    """redis-server on loopback holding the bench's key, as `lambdagate keys
    create` stores it on Redis."""
    redis = procs.start(
        "redis",
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    )
    wait_until("redis", lambda: _redis(port, "PING") == "PONG", redis, procs, "redis")
    record = write_bench_key(work)
    _redis(port, "HSET", "lambdagate:keys", record["hash"], json.dumps(record))
    _redis(port, "INCR", "lambdagate:keys:version")
    return redis


def _redis(port: int, *args: str) -> str:
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=5)
    return out.stdout.strip()


# ---------------------------------------------------------------- the stack


class Stack:
    """The processes under test, started once and left running: the stand-in,
    the invoker (when a lambdagate case is measured) and one Envoy per case."""

    def __init__(self, args, tools: dict, workdir: str, procs: Procs):
        self.args = args
        self.work = workdir
        self.procs = procs
        self.tools = tools
        self.ports: dict = {}
        self.envoys: dict[str, dict] = {}
        self.invoker: subprocess.Popen | None = None
        # The Redis case's own invoker, and the Redis it counts in.
        self.invoker_redis: subprocess.Popen | None = None
        self.redis: subprocess.Popen | None = None
        # `--baseline`: the other revision's invoker.
        self.invoker_baseline: subprocess.Popen | None = None
        # The unix-socket case's invoker.
        self.invoker_uds: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None

    def start(self) -> None:
        taken: set[int] = set()
        self.ports = {"nginx": free_port(taken), "invoker": free_port(taken), "invoker_admin": free_port(taken)}
        # nginx, and the files it serves for the streaming case
        self.nginx = standin.start(self.work, self.ports["nginx"], self.tools["nginx"], self.procs)
        # the invoker
        if any(is_lambdagate(c) for c in self.args.cases):
            conf = os.path.join(self.work, "invoker.yaml")
            write_bench_key(self.work)
            with open(conf, "w") as f:
                f.write(invoker_conf(self.ports))
            env = dict(os.environ, BENCH_LAMBDA_KEY_ID=KEY_ID, BENCH_LAMBDA_SECRET=SECRET, LAMBDAGATE_LOG="warn")
            for k in list(env):
                if k.startswith("AWS_"):
                    del env[k]  # nothing from this shell may change the invoker's credentials
            self.invoker = self.start_invoker("invoker", conf, env, self.ports["invoker_admin"])
            if KEYED_REDIS_CASE in self.args.cases:
                self.ports.update(
                    redis=free_port(taken), invoker_redis=free_port(taken), invoker_redis_admin=free_port(taken)
                )
                self.redis = start_redis_store(self.work, self.ports["redis"], self.procs)
                conf = os.path.join(self.work, "invoker-redis.yaml")
                with open(conf, "w") as f:
                    f.write(
                        invoker_conf(
                            dict(self.ports, invoker=self.ports["invoker_redis"], invoker_admin=self.ports["invoker_redis_admin"]),
                            store=f'{{redis: "redis://127.0.0.1:{self.ports["redis"]}/0"}}',
                        )
                    )
                self.invoker_redis = self.start_invoker("invoker-redis", conf, env, self.ports["invoker_redis_admin"])
            if BASELINE_CASE in self.args.cases:
                self.ports.update(invoker_baseline=free_port(taken), invoker_baseline_admin=free_port(taken))
                conf = os.path.join(self.work, "invoker-baseline.yaml")
                with open(conf, "w") as f:
                    f.write(
                        invoker_conf(
                            dict(
                                self.ports,
                                invoker=self.ports["invoker_baseline"],
                                invoker_admin=self.ports["invoker_baseline_admin"],
                            ),
                            store=None,
                        )
                    )
                self.invoker_baseline = self.start_invoker(
                    "invoker-baseline",
                    conf,
                    env,
                    self.ports["invoker_baseline_admin"],
                    self.tools["baseline_invoker"],
                )
            if UDS_CASE in self.args.cases:
                self.ports.update(
                    invoker_uds_admin=free_port(taken), invoker_socket=os.path.join(self.work, "invoker.sock")
                )
                conf = os.path.join(self.work, "invoker-uds.yaml")
                with open(conf, "w") as f:
                    f.write(
                        invoker_conf(
                            dict(self.ports, invoker_admin=self.ports["invoker_uds_admin"]),
                            store=None,  # one invoker per usage folder; this case has no keys
                            listen=f"unix:{self.ports['invoker_socket']}",
                        )
                    )
                self.invoker_uds = self.start_invoker("invoker-uds", conf, env, self.ports["invoker_uds_admin"])
        # the Envoys
        envoy_env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_EC2_METADATA_DISABLED="true")
        envoy_env.pop("AWS_SESSION_TOKEN", None)
        envoy_env.pop("AWS_PROFILE", None)
        for case in self.args.cases:
            ports = dict(self.ports, admin=free_port(taken), listen=free_port(taken))
            if case == KEYED_REDIS_CASE:
                ports["invoker"] = self.ports["invoker_redis"]
            if case == BASELINE_CASE:
                ports["invoker"] = self.ports["invoker_baseline"]
            conf = os.path.join(self.work, f"envoy-{case}.yaml")
            wasm = self.tools["baseline_wasm"] if case == BASELINE_CASE else self.tools["wasm"]
            with open(conf, "w") as f:
                f.write(envoy_conf(case, ports, wasm))
            p = self.procs.start(
                f"envoy-{case}",
                [
                    self.tools["envoy"],
                    "-c", conf,
                    "--concurrency", "1",
                    "--disable-hot-restart",
                    "--log-level", "warn",
                ],
                env=envoy_env,
            )
            self.envoys[case] = {"proc": p, "ports": ports}
        for case, e in self.envoys.items():
            wait_until(
                f"envoy ({case})",
                lambda e=e: http("GET", f"http://127.0.0.1:{e['ports']['admin']}/ready")[0] == 200,
                e["proc"],
                self.procs,
                f"envoy-{case}",
                timeout=60,
            )
        for case in self.envoys:
            self.check_case(case)
        for case in self.stream_cases():
            self.check_stream(case)

    def start_invoker(
        self, name: str, conf: str, env: dict, admin_port: int, binary: str | None = None
    ) -> subprocess.Popen:
        p = self.procs.start(
            name,
            [binary or self.tools["invoker"], "serve", "--config", conf, "--worker-threads", "1"],
            env=env,
        )
        wait_until(name, lambda: http("GET", f"http://127.0.0.1:{admin_port}/healthz")[0] == 200, p, self.procs, name)
        return p

    def invoker_of(self, case: str) -> subprocess.Popen | None:
        """The invoker a case's Envoy calls (none for the native cases)."""
        if not is_lambdagate(case):
            return None
        if case == BASELINE_CASE:
            return self.invoker_baseline
        if case == UDS_CASE:
            return self.invoker_uds
        return self.invoker_redis if case == KEYED_REDIS_CASE else self.invoker

    def extra_pids(self, case: str) -> list[int]:
        """Processes whose CPU counts with the invoker's: the Redis store."""
        return [self.redis.pid] if case == KEYED_REDIS_CASE and self.redis else []

    def check_case(self, case: str) -> None:
        """One request through the case: right status, right body, signed (else the stand-in says 403)."""
        status, headers, body = http(
            "POST",
            self.url(case),
            request_body(1024),
            {"Content-Type": "application/json", "Authorization": AUTH_TOKEN, "x-api-key": BENCH_API_KEY},
        )
        if case in KEYED_CASES:
            # Without the key: refused (403; 429 from Envoy's rate-limit
            # filter, as the bench's Envoy has render's edge pieces but not
            # the usage refusals' local-reply mappers that make it 403).
            refused, _, _ = http("POST", self.url(case), request_body(1024), {"Content-Type": "application/json"})
            if refused not in (403, 429):
                raise Failure(f"{case}: a request without the key got {refused}, expected a refusal")
        if case in ("floor", "native-passthrough"):
            want = STAND_IN_REPLY.encode()  # the raw Invoke reply
        else:
            want = FUNCTION_BODY.encode()  # the function's response, mapped to HTTP
        if status != 200 or body != want:
            raise Failure(
                f"{case}: a test request got {status} {body[:300]!r}, expected 200 {want!r}\n"
                + self.procs.log_tail(f"envoy-{case}")
                + ("\n" + self.procs.log_tail("invoker") if is_lambdagate(case) else "")
            )
        log(f"{case}: ok ({status} {body[:60]!r})")

    def stream_cases(self) -> list[str]:
        if self.args.stream_reps <= 0:
            return []
        return [c for c in STREAM_CASES if c in self.envoys]

    def check_stream(self, case: str) -> None:
        """One 10 MiB stream through the case: 200, the prelude's content type
        (lambdagate), and exactly the body the stand-in holds, in order."""
        status, headers, body = http("GET", self.url(case, STREAM_PATH), timeout=60)
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type")
        want = standin.stream_body()
        if status != 200 or ctype != "application/octet-stream" or body != want:
            raise Failure(
                f"{case} stream: a test request got {status} content-type {ctype!r}, {len(body)} bytes "
                f"({'the expected body' if body == want else repr(body[:200])}), "
                f"expected 200 application/octet-stream with the {len(want)}-byte body\n"
                + self.procs.log_tail(f"envoy-{case}")
                + ("\n" + self.procs.log_tail("invoker") if is_lambdagate(case) else "")
            )
        log(f"{case}: stream ok ({status} {ctype}, {len(body)} bytes)")

    # -- helpers

    def url(self, case: str, path: str = CLIENT_PATH) -> str:
        return f"http://127.0.0.1:{self.envoys[case]['ports']['listen']}{path}"

    def envoy_stat(self, case: str, name: str) -> int:
        port = self.envoys[case]["ports"]["admin"]
        query = urllib.parse.quote(f"^{re.escape(name)}$", safe="")
        _, _, body = http("GET", f"http://127.0.0.1:{port}/stats?filter={query}")
        for line in body.decode().splitlines():
            k, _, v = line.partition(":")
            if k.strip() == name:
                return int(v.strip())
        return 0

    def invoker_metrics(self, case: str = "lambdagate") -> dict:
        if self.invoker is None:
            return {}
        admin = {
            KEYED_REDIS_CASE: self.ports.get("invoker_redis_admin"),
            BASELINE_CASE: self.ports.get("invoker_baseline_admin"),
            UDS_CASE: self.ports.get("invoker_uds_admin"),
        }.get(case, self.ports["invoker_admin"])
        _, _, body = http("GET", f"http://127.0.0.1:{admin}/metrics")
        sums: dict[str, float] = {}
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m:
                sums[m.group(1)] = sums.get(m.group(1), 0.0) + float(m.group(3))
        return {
            "sts_refreshes": sums.get("lambdagate_sts_refreshes_total", 0.0),
            "credential_fetches": sums.get("lambdagate_credential_fetches_total", 0.0),
            "credential_errors": sums.get("lambdagate_credential_errors_total", 0.0),
            "invocations": sums.get("lambdagate_invocations_total", 0.0),
        }

    def counters(self, case: str) -> dict:
        c = {"nginx_accepts": standin.nginx_accepts(self.ports["nginx"])}
        if is_lambdagate(case):
            c["envoy_to_invoker_cx_total"] = self.envoy_stat(
                case, "cluster.lambdagate_invoker.upstream_cx_total"
            ) + self.envoy_stat(case, "cluster.lambdagate_invoker_http1.upstream_cx_total")
            c.update(self.invoker_metrics(case))
        else:
            c["envoy_to_stand_in_cx_total"] = self.envoy_stat(case, "cluster.stand_in.upstream_cx_total")
        return c
