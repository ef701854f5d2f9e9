//! The second half of an event: the body written into a head (see
//! `event`). It runs in the invoker for every request with a body, so a
//! large body is escaped or base64-encoded once, natively, and never past
//! Lambda's limit.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambdagate_proto::{BodyEncoding, EventHead};
use serde_json::value::RawValue;

/// The whole event: `head` with `body` written in as its encoding says;
/// byte for byte what [`build`] writes.
pub fn finish(head: &EventHead, body: &[u8]) -> Result<Vec<u8>, EventError> {
    finish_within(head, body, usize::MAX)
}

/// [`finish`], refusing an event over `limit` bytes before it is written
/// whole: what the invoker runs for a head the filter sent (the body never
/// crossed into the wasm VM). Escaping can make text six times longer, so
/// the bound keeps a hostile body from costing more than `limit`.
pub fn finish_within(head: &EventHead, body: &[u8], limit: usize) -> Result<Vec<u8>, EventError> {
    let json = head.json.as_slice();
    // At least one field before the body's, which follows it after a comma.
    if json.first() != Some(&b'{') || json.len() < 2 {
        return Err(EventError::Head);
    }
    let encoding = BodyEncoding::try_from(head.body)
        .ok()
        .filter(|e| *e != BodyEncoding::Unspecified)
        .ok_or(EventError::Encoding(head.body))?;
    let at_least = min_len(head, body.len());
    if at_least > limit {
        return Err(EventError::TooLarge { limit });
    }
    let mut out = Vec::with_capacity(at_least + 64);
    out.extend_from_slice(json);
    let base64 = match encoding {
        BodyEncoding::Unspecified => return Err(EventError::Encoding(head.body)),
        BodyEncoding::BodyRestText => {
            out.extend_from_slice(BODY_KEY);
            if body.is_empty() {
                out.extend_from_slice(b"null");
            } else {
                // A REST API passes a binary body it was not told about
                // with its invalid bytes replaced. (`from_utf8` first: it
                // checks ASCII a word at a time, the lossy walk does not.)
                match std::str::from_utf8(body) {
                    Ok(text) => write_text(&mut out, text, limit)?,
                    Err(_) => write_text(&mut out, &String::from_utf8_lossy(body), limit)?,
                }
            }
            false
        }
        BodyEncoding::BodyRestBase64 => {
            out.extend_from_slice(BODY_KEY);
            write_base64(&mut out, body)
        }
        BodyEncoding::BodyHttpText | BodyEncoding::BodyHttpBase64 if body.is_empty() => false,
        BodyEncoding::BodyHttpText => {
            out.extend_from_slice(BODY_KEY);
            match std::str::from_utf8(body) {
                Ok(text) => write_text(&mut out, text, limit).map(|()| false)?,
                Err(_) => write_base64(&mut out, body),
            }
        }
        BodyEncoding::BodyHttpBase64 => {
            out.extend_from_slice(BODY_KEY);
            write_base64(&mut out, body)
        }
        BodyEncoding::BodyWso2 => {
            // The body as WSO2 passes it: parsed JSON, else a string
            // (base64 when it is not UTF-8), null when empty.
            out.extend_from_slice(BODY_KEY);
            match std::str::from_utf8(body) {
                _ if body.is_empty() => out.extend_from_slice(b"null"),
                Ok(text) => match serde_json::from_str::<&RawValue>(text) {
                    Ok(json) => out.extend_from_slice(json.get().as_bytes()),
                    Err(_) => write_text(&mut out, text, limit)?,
                },
                Err(_) => {
                    write_base64(&mut out, body);
                }
            }
            out.push(b'}');
            return within(out, limit);
        }
    };
    out.extend_from_slice(if base64 {
        b",\"isBase64Encoded\":true}"
    } else {
        b",\"isBase64Encoded\":false}"
    });
    within(out, limit)
}

fn within(event: Vec<u8>, limit: usize) -> Result<Vec<u8>, EventError> {
    if event.len() > limit {
        return Err(EventError::TooLarge { limit });
    }
    Ok(event)
}

/// The body's key, after the head's last field.
const BODY_KEY: &[u8] = b",\"body\":";

/// A lower bound of the event's size for a body of `body_len` bytes (exact
/// for base64 bodies), so an event that cannot fit is refused before the
/// body is read.
pub fn min_len(head: &EventHead, body_len: usize) -> usize {
    let base64 = matches!(
        BodyEncoding::try_from(head.body),
        Ok(BodyEncoding::BodyRestBase64 | BodyEncoding::BodyHttpBase64)
    );
    let body = if base64 {
        body_len.div_ceil(3).saturating_mul(4)
    } else {
        body_len
    };
    head.json.len().saturating_add(body).saturating_add(1)
}

/// A JSON string, escaped as serde_json escapes it, as long as `out`
/// stays within `limit` bytes. The body is most of a large event: runs
/// that need no escape are found eight bytes at a time and copied whole.
fn write_text(out: &mut Vec<u8>, text: &str, limit: usize) -> Result<(), EventError> {
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut run_start = 0;
    let mut i = clean_words(bytes);
    while i < bytes.len() {
        let Some(&byte) = bytes.get(i) else { break };
        i += 1;
        let Some(escape) = escape(byte) else {
            continue;
        };
        out.extend_from_slice(bytes.get(run_start..i - 1).unwrap_or_default());
        escape.write(out, byte);
        if out.len() > limit {
            return Err(EventError::TooLarge { limit });
        }
        run_start = i;
        // Back to whole words after a byte that needed an escape.
        i += bytes.get(i..).map_or(0, clean_words);
    }
    out.extend_from_slice(bytes.get(run_start..).unwrap_or_default());
    out.push(b'"');
    if out.len() > limit {
        return Err(EventError::TooLarge { limit });
    }
    Ok(())
}

/// How many leading bytes, in whole eight-byte words, need no escape.
fn clean_words(bytes: &[u8]) -> usize {
    bytes
        .chunks_exact(8)
        .take_while(|word| {
            <[u8; 8]>::try_from(*word).is_ok_and(|w| !needs_escape(u64::from_le_bytes(w)))
        })
        .count()
        * 8
}

/// Whether any of a word's eight bytes needs an escape in a JSON string:
/// below 0x20, `"` or `\\` (bit tricks from "Bit Twiddling Hacks": a
/// byte is zero / less than n; exact as a yes or no).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let less_than_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero_in(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(word ^ (ONES * u64::from(b'\\')));
    less_than_space | quote | backslash != 0
}

/// How one byte is escaped, if it is.
enum Escape {
    /// `\\` and one character.
    Short(u8),
    /// `\\u00XX`.
    Unicode,
}

fn escape(byte: u8) -> Option<Escape> {
    Some(match byte {
        b'"' => Escape::Short(b'"'),
        b'\\' => Escape::Short(b'\\'),
        0x08 => Escape::Short(b'b'),
        0x0c => Escape::Short(b'f'),
        b'\n' => Escape::Short(b'n'),
        b'\r' => Escape::Short(b'r'),
        b'\t' => Escape::Short(b't'),
        0x00..=0x1f => Escape::Unicode,
        _ => return None,
    })
}

impl Escape {
    fn write(&self, out: &mut Vec<u8>, byte: u8) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        match self {
            Escape::Short(c) => out.extend_from_slice(&[b'\\', *c]),
            Escape::Unicode => {
                let hex = |n: u8| HEX.get(usize::from(n & 0xf)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(byte >> 4), hex(byte)]);
            }
        }
    }
}

/// A JSON string of the body in base64, or `null` for an empty body;
/// whether it wrote base64.
fn write_base64(out: &mut Vec<u8>, body: &[u8]) -> bool {
    if body.is_empty() {
        out.extend_from_slice(b"null");
        return false;
    }
    out.push(b'"');
    let start = out.len();
    out.resize(start + body.len().div_ceil(3) * 4, 0);
    if let Some(space) = out.get_mut(start..) {
        // The space is exactly the padded length: this cannot fail.
        let _ = STANDARD.encode_slice(body, space);
    }
    out.push(b'"');
    true
}

/// Why an event could not be built (or finished from a head).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event could not be written as JSON: {0}")]
    Json(String),
    #[error("the event head is not a JSON object without its closing brace")]
    Head,
    #[error("the event head's body encoding {0} is unknown")]
    Encoding(i32),
    #[error("the Lambda event is over Lambda's limit of {limit} bytes")]
    TooLarge { limit: usize },
}

impl From<serde_json::Error> for EventError {
    fn from(e: serde_json::Error) -> Self {
        EventError::Json(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_exactly_as_serde_json_escapes_it() {
        let mut samples: Vec<String> = (0u8..=0x7f)
            .map(|b| format!("ab{}cdefghij{}", b as char, b as char))
            .collect();
        samples.push(String::new());
        samples.push("é 日本 🎉 \"q\" \\ \u{7f}\u{1}\u{1f}".repeat(5));
        // Escapes at every offset of an eight-byte word.
        for at in 0..17 {
            let mut s = "x".repeat(17);
            s.insert(at, '"');
            samples.push(s);
        }
        for text in samples {
            let mut out = Vec::new();
            write_text(&mut out, &text, usize::MAX).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
        }
    }
}
