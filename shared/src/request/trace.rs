//! The X-Ray trace header a request carries into Lambda.
//!
//! Taken from the client's `X-Amzn-Trace-Id` when it holds a valid
//! `Root`, else converted from a W3C `traceparent` (the X-Ray id is the
//! W3C trace id with `1-` and a dash after its first 8 hex digits), else a
//! new one: the arrival time and 24 hex digits of the gateway's request id.
//! Only `Root`, `Parent` and `Sampled` are kept, each checked, so a client
//! cannot smuggle other text into the header Lambda and the logs receive.

use crate::headers::last_header;

/// The trace header for a request.
pub fn trace_header(headers: &[(String, String)], request_id: &str, now_ms: u64) -> String {
    if let Some(value) = last_header(headers, "x-amzn-trace-id")
        && let Some(header) = from_xray(value)
    {
        return header;
    }
    if let Some(value) = last_header(headers, "traceparent")
        && let Some(header) = from_traceparent(value)
    {
        return header;
    }
    format!("Root=1-{:08x}-{}", now_ms / 1000, id_hex(request_id))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`.
fn from_xray(value: &str) -> Option<String> {
    let (mut root, mut parent, mut sampled) = (None, None, None);
    for field in value.split(';') {
        let (key, val) = field.trim().split_once('=')?;
        match key.trim() {
            "Root" => root = Some(val.trim()),
            "Parent" => parent = Some(val.trim()),
            "Sampled" => sampled = Some(val.trim()),
            _ => {}
        }
    }
    let root = root?;
    let mut parts = root.split('-');
    let valid_root = parts.next() == Some("1")
        && parts.next().is_some_and(|t| is_hex(t, 8))
        && parts.next().is_some_and(|r| is_hex(r, 24))
        && parts.next().is_none();
    if !valid_root {
        return None;
    }
    let mut header = format!("Root={}", root.to_ascii_lowercase());
    if let Some(parent) = parent.filter(|p| is_hex(p, 16)) {
        header.push_str(";Parent=");
        header.push_str(&parent.to_ascii_lowercase());
    }
    if let Some(sampled) = sampled.filter(|s| matches!(*s, "0" | "1" | "?")) {
        header.push_str(";Sampled=");
        header.push_str(sampled);
    }
    Some(header)
}

/// `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
fn from_traceparent(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let valid = is_hex(version, 2)
        && version != "ff"
        && is_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && is_hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && is_hex(flags, 2)
        // Version 00 has exactly four fields; later ones may add more.
        && (version != "00" || parts.next().is_none());
    if !valid {
        return None;
    }
    let trace_id = trace_id.to_ascii_lowercase();
    let (epoch, unique) = trace_id.split_at(8);
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1;
    Some(format!(
        "Root=1-{epoch}-{unique};Parent={};Sampled={sampled}",
        parent_id.to_ascii_lowercase()
    ))
}

/// 24 hex digits from the request id: its own when it is a UUID (Envoy's
/// are random), else a hash of it.
fn id_hex(request_id: &str) -> String {
    let hex: String = request_id
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() >= 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex.get(hex.len() - 24..).unwrap_or_default().to_owned();
    }
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in request_id.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    format!("{:024x}", hash & ((1u128 << 96) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const NOW_MS: u64 = 1_764_547_200_123;

    #[test]
    fn a_client_x_ray_header_is_kept_checked_fields_only() {
        let got = trace_header(
            &h(&[(
                "x-amzn-trace-id",
                "Root=1-5759E988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Evil=x\r\n",
            )]),
            "rid",
            NOW_MS,
        );
        assert_eq!(
            got,
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        );
        // A bad Parent or Sampled is dropped, the Root kept.
        assert_eq!(
            trace_header(
                &h(&[(
                    "x-amzn-trace-id",
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=zz;Sampled=yes"
                )]),
                "rid",
                NOW_MS
            ),
            "Root=1-5759e988-bd862e3fe1be46a994272793"
        );
    }

    #[test]
    fn a_w3c_traceparent_is_converted() {
        let got = trace_header(
            &h(&[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )]),
            "rid",
            NOW_MS,
        );
        assert_eq!(
            got,
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        let unsampled = trace_header(
            &h(&[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            )]),
            "rid",
            NOW_MS,
        );
        assert!(unsampled.ends_with(";Sampled=0"), "{unsampled}");
    }

    #[test]
    fn invalid_headers_get_a_new_trace_from_the_request_id() {
        let rid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        for headers in [
            h(&[]),
            h(&[("x-amzn-trace-id", "Root=1-xyz-abc")]),
            h(&[(
                "x-amzn-trace-id",
                "Root=2-5759e988-bd862e3fe1be46a994272793",
            )]),
            h(&[(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )]),
            h(&[(
                "traceparent",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )]),
            h(&[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            )]),
            h(&[("traceparent", "garbage")]),
        ] {
            assert_eq!(
                trace_header(&headers, rid, NOW_MS),
                format!("Root=1-{:08x}-d9cb469fa16570867728950e", NOW_MS / 1000),
                "{headers:?}"
            );
        }
        let other = trace_header(&[], "local-7-1234", NOW_MS);
        let root = other.strip_prefix("Root=1-").unwrap();
        assert!(is_hex(&root[..8], 8) && is_hex(&root[9..], 24), "{other}");
        assert_ne!(other, trace_header(&[], "local-7-1235", NOW_MS));
    }
}
