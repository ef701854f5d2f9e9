//! Small URL helpers: splitting `:path`, percent-decoding, query parsing.
//!
//! Decoding never fails: a `%` not followed by two hex digits is kept as
//! is, and bytes that do not form UTF-8 after decoding become U+FFFD.

use std::borrow::Cow;

/// Splits Envoy's `:path` into the path and the raw query string (without
/// the `?`). A fragment, which clients should never send, stays in the query.
pub fn split_path(path_and_query: &str) -> (&str, Option<&str>) {
    match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    }
}

/// Percent-decodes a path segment (`+` stays a plus).
pub fn decode_path(text: &str) -> Cow<'_, str> {
    decode(text, false)
}

/// Decodes a query-string key or value the way HTML forms encode them:
/// `+` is a space and `%XX` a byte.
pub fn decode_query(text: &str) -> Cow<'_, str> {
    decode(text, true)
}

fn decode(text: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !text
        .bytes()
        .any(|b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi << 4) | lo);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a raw query string into decoded `(key, value)` pairs, in order.
/// Empty pieces (`a=1&&b=2`) are skipped; a key without `=` has value "".
pub fn parse_query(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            (decode_query(key), decode_query(value))
        })
        .collect()
}

/// The host part of an authority: `example.com:8080` → `example.com`,
/// `[::1]:8080` → `[::1]`.
pub fn host_without_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => authority.get(..=end).unwrap_or(authority),
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The client address without a port: Envoy's `source.address` property is
/// `1.2.3.4:5678` or `[::1]:5678`; a bare address is returned unchanged.
pub fn ip_without_port(address: &str) -> &str {
    if let Some(inner) = address.strip_prefix('[') {
        return inner.split_once(']').map_or(address, |(ip, _)| ip);
    }
    // More than one colon and no brackets: a bare IPv6 address.
    if address.bytes().filter(|&b| b == b':').count() == 1 {
        return address.split_once(':').map_or(address, |(ip, _)| ip);
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_query() {
        assert_eq!(split_path("/a/b?x=1&y"), ("/a/b", Some("x=1&y")));
        assert_eq!(split_path("/a/b"), ("/a/b", None));
        assert_eq!(split_path("/a?"), ("/a", Some("")));
    }

    #[test]
    fn decodes_percent_sequences_and_keeps_garbage() {
        assert_eq!(decode_path("a%20b%2Fc"), "a b/c");
        assert_eq!(decode_path("a+b"), "a+b");
        assert_eq!(decode_query("a+b%2B"), "a b+");
        assert_eq!(decode_path("100%"), "100%");
        assert_eq!(decode_path("%zz%4"), "%zz%4");
        assert_eq!(decode_path("caf%C3%A9"), "café");
        assert_eq!(decode_path("%FF%FE"), "\u{FFFD}\u{FFFD}");
        assert!(matches!(decode_path("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn parses_queries() {
        let q = parse_query("firstName=John&lastName=Doe&&flag&a=1&a=2&e%3D=x%26y");
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(
            q,
            [
                ("firstName", "John"),
                ("lastName", "Doe"),
                ("flag", ""),
                ("a", "1"),
                ("a", "2"),
                ("e=", "x&y")
            ]
        );
    }

    #[test]
    fn strips_ports() {
        assert_eq!(host_without_port("api.example.com:8443"), "api.example.com");
        assert_eq!(host_without_port("api.example.com"), "api.example.com");
        assert_eq!(host_without_port("[::1]:10000"), "[::1]");
        assert_eq!(ip_without_port("10.1.2.3:5678"), "10.1.2.3");
        assert_eq!(ip_without_port("[2001:db8::1]:5678"), "2001:db8::1");
        assert_eq!(ip_without_port("2001:db8::1"), "2001:db8::1");
        assert_eq!(ip_without_port("10.1.2.3"), "10.1.2.3");
    }
}
