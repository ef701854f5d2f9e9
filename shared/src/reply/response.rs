//! The response the glue sends.

use crate::contract::Outcome;

/// An HTTP response for the glue to send (`send_http_response`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Lower-case names; a name may repeat (`set-cookie`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What happened, for access logs and metrics (never sent to the
    /// client).
    pub outcome: Outcome,
    /// For the gateway's log when the client was told less than the whole
    /// story (never sent to the client).
    pub detail: Option<String>,
}

impl HttpResponse {
    /// The first value of a header (names compared ignoring case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
