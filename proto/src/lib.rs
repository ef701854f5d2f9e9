//! The gRPC contract between the lambdagate filter and the invoker.
//!
//! The prost messages build for every target, wasm32 included; the tonic
//! client and server are behind the `grpc` feature.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/lambdagate.v1.rs"));
}

pub use v1::{
    BodyEncoding, ErrorDetail, ErrorKind, EventHead, HttpBodyChunk, HttpHeader, HttpReply,
    InvocationType, InvokeReply, InvokeRequest, UsageCheck,
};

/// Fully qualified gRPC method path, for callers that frame calls themselves
/// (the proxy-wasm filter names service and method separately).
pub const INVOKER_SERVICE: &str = "lambdagate.v1.Invoker";
pub const INVOKE_METHOD: &str = "Invoke";
/// `:path` of `Invoke`, for the callout as HTTP/1.1 (`callout_cluster`).
pub const INVOKE_PATH: &str = "/lambdagate.v1.Invoker/Invoke";

/// The 5 bytes in front of an uncompressed gRPC message of `len` bytes,
/// for callers that frame messages themselves: flag 0, then the length,
/// big-endian.
pub fn grpc_frame_header(len: usize) -> [u8; 5] {
    let [a, b, c, d] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [0, a, b, c, d]
}

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

include!(concat!(env!("OUT_DIR"), "/error_kinds.rs"));

impl ErrorKind {
    /// Every kind invoker.proto defines (read from its descriptor at build
    /// time, so a new kind is never missed).
    pub fn all() -> impl Iterator<Item = ErrorKind> {
        ERROR_KIND_VALUES
            .into_iter()
            .filter_map(|value| ErrorKind::try_from(value).ok())
    }
}

/// The binary trailer that carries an [`ErrorDetail`] (the failure's kind)
/// with a non-OK status.
pub const ERROR_KIND_TRAILER: &str = "lambdagate-error-kind-bin";

/// A failure as a gRPC status, for the invoker: its code, its message in
/// words, its kind typed in the [`ERROR_KIND_TRAILER`] (with any other
/// `metadata`).
#[cfg(feature = "grpc")]
pub fn failure_status(
    code: tonic::Code,
    kind: ErrorKind,
    message: &str,
    mut metadata: tonic::metadata::MetadataMap,
) -> tonic::Status {
    use prost::Message as _;
    let detail = ErrorDetail { kind: kind as i32 }.encode_to_vec();
    metadata.insert_bin(
        ERROR_KIND_TRAILER,
        tonic::metadata::MetadataValue::from_bytes(&detail),
    );
    tonic::Status::with_metadata(code, message, metadata)
}

/// The kind of a failed call, for a gRPC client: from the
/// [`ERROR_KIND_TRAILER`]; `Unspecified` when the status has none (it did
/// not come from the invoker).
#[cfg(feature = "grpc")]
pub fn error_kind(status: &tonic::Status) -> ErrorKind {
    use prost::Message as _;
    status
        .metadata()
        .get_bin(ERROR_KIND_TRAILER)
        .and_then(|value| value.to_bytes().ok())
        .and_then(|bytes| ErrorDetail::decode(bytes).ok())
        .and_then(|detail| ErrorKind::try_from(detail.kind).ok())
        .unwrap_or(ErrorKind::Unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_kind_of_the_proto_is_listed() {
        // Each name the generated enum knows is in `all()`, once.
        let kinds: Vec<ErrorKind> = ErrorKind::all().collect();
        assert_eq!(kinds.len(), ERROR_KIND_VALUES.len());
        for kind in &kinds {
            assert_eq!(ErrorKind::from_str_name(kind.as_str_name()), Some(*kind));
            assert_eq!(kinds.iter().filter(|k| *k == kind).count(), 1);
        }
        assert!(kinds.contains(&ErrorKind::Unspecified) && kinds.contains(&ErrorKind::Internal));
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn a_failure_status_carries_its_kind_typed() {
        for kind in ErrorKind::all() {
            let status = failure_status(
                tonic::Code::Unavailable,
                kind,
                "ACCESS_DENIED: words are only words",
                tonic::metadata::MetadataMap::new(),
            );
            assert_eq!(error_kind(&status), kind);
            assert_eq!(status.message(), "ACCESS_DENIED: words are only words");
        }
        // A status from anyone else (Envoy, a proxy) has no kind, whatever
        // its message says.
        let foreign = tonic::Status::unavailable("THROTTLED: upstream reset");
        assert_eq!(error_kind(&foreign), ErrorKind::Unspecified);
    }

    #[test]
    fn request_encodes_and_decodes() {
        let request = InvokeRequest {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f:live".into(),
            endpoint: "prod".into(),
            payload: b"{\"a\":1}".to_vec().into(),
            timeout_ms: 1500,
            invocation_type: InvocationType::Event as i32,
            request_id: "r-1".into(),
            trace_id: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into(),
            failure_in_reply: true,
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
            usage: Some(UsageCheck {
                method: "GET".into(),
                path: "/keyed/a".into(),
                api_key: "lgk_0123".into(),
            }),
            event: Some(EventHead {
                json: b"{\"version\":\"2.0\"".to_vec(),
                body: BodyEncoding::BodyHttpText as i32,
            }),
        };
        let bytes = request.encode_to_vec();
        assert_eq!(InvokeRequest::decode(bytes.as_slice()), Ok(request));
    }
}
