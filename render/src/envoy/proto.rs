//! Protobuf's and Envoy's common shapes as render writes them: `Any` with
//! its type URL, durations, addresses, data sources.

use serde::{Serialize, Serializer};

/// A protobuf message with its type URL, for [`Any`].
pub trait TypeUrl {
    const TYPE_URL: &'static str;
}

/// `google.protobuf.Duration` in milliseconds, written as `0.250s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Millis(pub u32);

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}.{:03}s", self.0 / 1000, self.0 % 1000))
    }
}

/// HTTP/2 settings render sets: the windows (and, downstream, the stream
/// limit).
#[derive(Serialize)]
pub(crate) struct Http2ProtocolOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_concurrent_streams: Option<u32>,
    pub(crate) initial_stream_window_size: u32,
    pub(crate) initial_connection_window_size: u32,
}

/// `google.protobuf.Any` as Envoy reads it in YAML or JSON: `@type`, then
/// the message's own fields.
pub struct Any<T>(pub T);

impl<T: TypeUrl + Serialize> Serialize for Any<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct WithTypeUrl<'a, T> {
            #[serde(rename = "@type")]
            type_url: &'static str,
            #[serde(flatten)]
            message: &'a T,
        }
        WithTypeUrl {
            type_url: T::TYPE_URL,
            message: &self.0,
        }
        .serialize(serializer)
    }
}

/// `google.protobuf.Duration` in whole seconds, written as Envoy reads it
/// in YAML: a plain `15s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(pub u32);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}s", self.0))
    }
}

/// `google.protobuf.StringValue`: the filter's configuration, which Envoy
/// hands to `on_configure` as is.
#[derive(Serialize)]
pub struct StringValue {
    pub value: String,
}

impl TypeUrl for StringValue {
    const TYPE_URL: &'static str = "type.googleapis.com/google.protobuf.StringValue";
}

// ---------------------------------------------------------------------
// envoy.config.core.v3

/// `envoy.config.core.v3.Address`: an IP socket or a unix socket (`pipe`).
/// Untagged, as serde_yaml would write an enum variant as a YAML tag.
#[derive(Clone, Serialize, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum Address {
    Socket { socket_address: SocketAddress },
    Pipe { pipe: Pipe },
}

#[derive(Clone, Serialize, Debug, PartialEq, Eq)]
pub struct SocketAddress {
    pub address: String,
    pub port_value: u16,
}

#[derive(Clone, Serialize, Debug, PartialEq, Eq)]
pub struct Pipe {
    pub path: String,
}

impl Address {
    /// `IP:PORT` or `unix:/path`, from the gateway setting `field`.
    pub fn parse(addr: &str, field: &str) -> Result<Self, String> {
        if let Some(path) = addr.strip_prefix("unix:") {
            return Ok(Address::Pipe {
                pipe: Pipe {
                    path: path.to_owned(),
                },
            });
        }
        let parsed: std::net::SocketAddr = addr.parse().map_err(|_| {
            format!("{field}: `{addr}` is not an IP address and port (or unix:/path)")
        })?;
        Ok(Address::Socket {
            socket_address: SocketAddress {
                address: parsed.ip().to_string(),
                port_value: parsed.port(),
            },
        })
    }
}

/// `envoy.config.core.v3.DataSource`: inline text or a file.
#[derive(Serialize)]
#[serde(untagged)]
pub enum DataSource {
    InlineString { inline_string: String },
    Filename { filename: String },
}
