"""Test functions on Powertools for AWS Lambda (Python): `rest_handler` on
APIGatewayRestResolver (payload 1.0), `http_handler` on APIGatewayHttpResolver
(payload 2.0). Each answers, as its JSON body, what Powertools observed
(`app.current_event` and the router's match), for
invoker/tests/consumer_libraries.rs to compare with what the client sent.
"""

import re

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

# The gateway serves each API under its own context (first path segment),
# as a base path mapping does: the routes below are relative to it.
API_CONTEXT = re.compile(r"^/[^/]+")


def observe(app, route, router_params):
    event = app.current_event
    context = event.request_context
    observed = {
        "route": route,
        "router_params": router_params,
        "method": event.http_method,
        "path": event.path,
        "path_parameters": event.path_parameters,
        "query_string_parameters": event.query_string_parameters,
        "headers": dict(event.headers),
        "resolved_cookies": event.resolved_cookies_field,
        "body": event.body,
        "is_base64_encoded": event.is_base64_encoded,
        "stage": context.stage,
        "stage_variables": event.stage_variables,
        "domain_name": context.domain_name,
    }
    try:
        observed["decoded_body"] = event.decoded_body
    except UnicodeDecodeError:
        # Powertools decodes a base64 body as UTF-8 text (on AWS too).
        observed["decoded_body"] = {"error": "UnicodeDecodeError"}
    if isinstance(app, APIGatewayRestResolver):
        observed["multi_value_query_string_parameters"] = event.multi_value_query_string_parameters
        observed["multi_value_headers"] = dict(event.multi_value_headers)
        observed["request_context_path"] = context.path
    else:
        observed["raw_path"] = event.raw_path
        observed["raw_query_string"] = event.raw_query_string
        observed["cookies"] = event.cookies
    return observed


def routes(app):
    @app.route("/items/<item_id>", method=["GET", "POST"])
    def item(item_id):
        return observe(app, "/items/<item_id>", {"item_id": item_id})

    # Powertools' greedy route: a regular expression (a named `<param>`
    # matches one segment only).
    @app.get("/files/.+")
    def files():
        return observe(app, "/files/.+", {})

    @app.exception_handler(NotFoundError)
    def not_found(_error):
        # 404 with what Powertools saw, so that a failed match explains itself.
        return Response(
            status_code=404,
            content_type=content_types.APPLICATION_JSON,
            body=observe(app, None, {}),
        )

    return app


rest = routes(APIGatewayRestResolver(strip_prefixes=[API_CONTEXT]))
http = routes(APIGatewayHttpResolver(strip_prefixes=[API_CONTEXT]))


def rest_handler(event, context):
    return rest.resolve(event, context)


def http_handler(event, context):
    return http.resolve(event, context)
