//! Header lists as the gateway holds them (`(name, value)` pairs, names
//! lower-case as Envoy gives them), and the rules for what may go into
//! one, shared by the request and the reply side.

/// The first value of a header (names compared ignoring case).
pub(crate) fn first_header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The last value of a header (names compared ignoring case).
pub(crate) fn last_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Sets each header of `extra`, replacing any of the same name (lifecycle
/// and trace headers over a function's own).
pub(crate) fn replace_headers(headers: &mut Vec<(String, String)>, extra: &[(String, String)]) {
    headers.retain(|(n, _)| !extra.iter().any(|(e, _)| e == n));
    headers.extend(extra.iter().cloned());
}

/// Sets a header only Lambda may give (its request id, the version that
/// ran): any of the function's is dropped, and an empty or invalid value
/// leaves none.
pub(crate) fn set_lambda_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(n, _)| n != name);
    if !value.is_empty() && is_header_value(&value) {
        headers.push((name.to_owned(), value));
    }
}

/// Headers a function may not set: pseudo-headers, hop-by-hop headers and
/// the length (Envoy computes it), and names that are not HTTP tokens.
pub(crate) fn is_forwardable(name: &str) -> bool {
    const DROPPED: &[&str] = &[
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !DROPPED.contains(&name)
}

/// A valid HTTP field value (RFC 9110): no control character but tab, not
/// only no CR, LF or NUL (a function's `\u000c` must not reach clients).
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}
