//! HTTP/2 spoken frame by frame, for what a well-behaved client library
//! will not do: open streams past the server's limit, reset streams as
//! fast as it can. Headers are HPACK literals without Huffman coding or
//! indexing (RFC 7541 §6.2.2), which every decoder must accept.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const ACK: u8 = 0x1;
/// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §6.5.2).
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// RST_STREAM / GOAWAY error codes.
pub const CANCEL: u32 = 0x8;
pub const REFUSED_STREAM: u32 = 0x7;

/// One frame as read.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM, or of a GOAWAY.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let bytes: [u8; 4] = self.payload.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    /// A SETTINGS frame's value for `id`.
    pub fn setting(&self, id: u16) -> Option<u32> {
        if self.kind != SETTINGS {
            return None;
        }
        self.payload.chunks_exact(6).find_map(|p| {
            let (key, value) = p.split_at(2);
            (u16::from_be_bytes([key[0], key[1]]) == id)
                .then(|| u32::from_be_bytes([value[0], value[1], value[2], value[3]]))
        })
    }
}

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `prefix`-bit prefix under `first` bits.
fn integer(out: &mut Vec<u8>, first: u8, prefix: u32, mut value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block of literal fields (new names, never indexed).
pub fn header_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(0x00);
        integer(&mut out, 0, 7, name.len());
        out.extend_from_slice(name.as_bytes());
        integer(&mut out, 0, 7, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// A HEADERS frame for a request on `stream`.
pub fn request(
    stream: u32,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    end_stream: bool,
) -> Vec<u8> {
    let mut headers = vec![
        (":method", method),
        (":scheme", "http"),
        (":authority", "gateway"),
        (":path", path),
    ];
    headers.extend_from_slice(extra);
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &header_block(&headers))
}

/// A RST_STREAM frame.
pub fn reset(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// A client connection: the preface and an empty SETTINGS sent; reads
/// frames one at a time.
pub struct RawH2 {
    stream: TcpStream,
    read: Vec<u8>,
    /// The server closed the connection (or reading failed).
    pub closed: bool,
}

impl RawH2 {
    pub async fn connect(addr: &str) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        stream.write_all(&hello).await?;
        Ok(RawH2 {
            stream,
            read: Vec::new(),
            closed: false,
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next frame; `None` when the connection closed or nothing came
    /// within `wait`. SETTINGS from the server are acknowledged.
    pub async fn next(&mut self, wait: Duration) -> Option<Frame> {
        loop {
            if self.read.len() >= 9 {
                let len = usize::from(self.read[0]) << 16
                    | usize::from(self.read[1]) << 8
                    | usize::from(self.read[2]);
                if self.read.len() >= 9 + len {
                    let head: Vec<u8> = self.read.drain(..9).collect();
                    let payload: Vec<u8> = self.read.drain(..len).collect();
                    let frame = Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]])
                            & 0x7fff_ffff,
                        payload,
                    };
                    if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                        self.send(&self::frame(SETTINGS, ACK, 0, &[])).await.ok()?;
                    }
                    return Some(frame);
                }
            }
            let mut buf = [0u8; 16 * 1024];
            let n = match tokio::time::timeout(wait, self.stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(n)) if n > 0 => n,
                Ok(_) => {
                    self.closed = true;
                    return None;
                }
            };
            self.read.extend_from_slice(&buf[..n]);
        }
    }
}
