//! Names the rendered files share.

/// Path of the ECDS file inside the output directory.
pub const ECDS_DIR: &str = "ecds";
pub const ECDS_FILE: &str = "lambdagate.yaml";
/// The lambdagate filter's name in the HTTP filter chain and in ECDS.
pub const FILTER_NAME: &str = "lambdagate";
/// Envoy's cluster for the invoker's admin server (the portal).
pub const PORTAL_CLUSTER: &str = "lambdagate_portal";
/// The empty cluster of the keyed APIs' routes (see `cluster::held_cluster`).
pub const HELD_CLUSTER: &str = "lambdagate_held";

/// The access log line of every rendered gateway: request id, Lambda's
/// request id and lambdagate's outcome (ok, function_error, timeout, ...).
pub const ACCESS_LOG_FORMAT: &str = "[%START_TIME%] \"%REQ(LAMBDAGATE-ORIGINAL-METHOD?:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%ms request_id=%REQ(X-REQUEST-ID)% lambda_request_id=%RESP(X-AMZN-REQUESTID)% trace_id=%RESP(X-AMZN-TRACE-ID)% outcome=%FILTER_STATE(wasm.lambdagate_outcome:PLAIN)%\n";

/// Where [`ACCESS_LOG_FORMAT`] takes the outcome from: what the filter set.
pub(crate) const OUTCOME_FROM_THE_FILTER: &str = "%FILTER_STATE(wasm.lambdagate_outcome:PLAIN)%";
