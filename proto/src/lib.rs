//! The gRPC contract between the lambdagate filter and the invoker.
//!
//! The prost messages build for every target, wasm32 included; the tonic
//! client and server are behind the `grpc` feature.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/lambdagate.v1.rs"));
}

pub use v1::{
    ErrorKind, HttpBodyChunk, HttpHeader, HttpReply, InvocationType, InvokeReply, InvokeRequest,
};

/// Fully qualified gRPC method path, for callers that frame calls themselves
/// (the proxy-wasm filter names service and method separately).
pub const INVOKER_SERVICE: &str = "lambdagate.v1.Invoker";
pub const INVOKE_METHOD: &str = "Invoke";

/// The router data path's call (`InvokeHttp`) and its wire names.
pub mod http_path {
    /// `:path` of the rewritten request.
    pub const PATH: &str = "/lambdagate.v1.Invoker/InvokeHttp";
    /// Request metadata carrying the `InvokeRequest` (base64, gRPC `-bin`)
    /// when the client's request has no body to replace.
    pub const INVOKE_METADATA: &str = "lambdagate-invoke-bin";
    /// Set by the filter on every request it forwards to the invoker; the
    /// Envoy route to the invoker requires it, and the filter refuses (400)
    /// any client request that carries it, so no client reaches the invoker
    /// directly.
    pub const FORWARDED_HEADER: &str = "lambdagate-forwarded";
    /// Reply metadata: the HTTP status for the client.
    pub const STATUS: &str = "lambdagate-status";
    /// Reply metadata: the outcome (`ok`, `timeout`, ...) for the access log.
    pub const OUTCOME: &str = "lambdagate-outcome";
    /// Reply metadata prefix of each of the client's response headers.
    pub const HEADER_PREFIX: &str = "lambdagate-h-";
}

/// Largest synchronous Lambda payload (request or response): 6 MB.
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Largest asynchronous (`Event`) Lambda payload: 1 MB.
pub const MAX_EVENT_PAYLOAD_BYTES: usize = 1024 * 1024;
/// gRPC message limit on both sides: the payload plus room for the envelope.
pub const MAX_GRPC_MESSAGE_BYTES: usize = MAX_SYNC_PAYLOAD_BYTES + 64 * 1024;

impl ErrorKind {
    /// Formats a gRPC status message that carries this kind: `"KIND: text"`.
    pub fn status_message(self, text: &str) -> String {
        format!("{}: {text}", self.as_str_name())
    }

    /// Lowercase label for metrics and access logs: `function_not_found`,
    /// `throttled`, ...; `ok` for `Unspecified` (no error).
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Unspecified => "ok",
            ErrorKind::FunctionNotFound => "function_not_found",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::NotAllowed => "not_allowed",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::FunctionError => "function_error",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::CredentialsUnavailable => "credentials_unavailable",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::LambdaUnavailable => "lambda_unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// Splits a gRPC status message written by [`ErrorKind::status_message`]
    /// into its kind and text. A message without a known kind prefix (from
    /// Envoy or a proxy in between) yields `ErrorKind::Unspecified` and the
    /// whole message.
    pub fn parse_status_message(message: &str) -> (ErrorKind, &str) {
        if let Some((name, text)) = message.split_once(": ")
            && let Some(kind) = ErrorKind::from_str_name(name)
        {
            return (kind, text);
        }
        (ErrorKind::Unspecified, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn status_message_round_trips_every_kind() {
        for value in 0..=12 {
            let Ok(kind) = ErrorKind::try_from(value) else {
                continue;
            };
            let message = kind.status_message("function f: try again");
            assert_eq!(
                ErrorKind::parse_status_message(&message),
                (kind, "function f: try again")
            );
        }
    }

    #[test]
    fn every_kind_has_its_own_label() {
        let mut seen = std::collections::HashSet::new();
        for value in 0..=12 {
            let kind = ErrorKind::try_from(value).unwrap();
            assert!(seen.insert(kind.label()), "{kind:?}");
            assert_eq!(
                kind.label(),
                kind.as_str_name()
                    .to_ascii_lowercase()
                    .replace("error_kind_unspecified", "ok")
            );
        }
    }

    #[test]
    fn foreign_status_messages_keep_their_text() {
        assert_eq!(
            ErrorKind::parse_status_message("upstream connect error: reset"),
            (ErrorKind::Unspecified, "upstream connect error: reset")
        );
        assert_eq!(
            ErrorKind::parse_status_message("no colon"),
            (ErrorKind::Unspecified, "no colon")
        );
    }

    #[test]
    fn request_encodes_and_decodes() {
        let request = InvokeRequest {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f:live".into(),
            endpoint: "prod".into(),
            payload: b"{\"a\":1}".to_vec(),
            timeout_ms: 1500,
            invocation_type: InvocationType::Event as i32,
            request_id: "r-1".into(),
            trace_id: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into(),
            http_reply: Some(HttpReply {
                payload_format: 2,
                decode_base64: true,
                function_error_status: 502,
                expose_errors: false,
                headers: vec![HttpHeader {
                    name: "deprecation".into(),
                    value: "true".into(),
                }],
                head_request: false,
                stream: false,
            }),
        };
        let bytes = request.encode_to_vec();
        assert_eq!(InvokeRequest::decode(bytes.as_slice()), Ok(request));
    }
}
