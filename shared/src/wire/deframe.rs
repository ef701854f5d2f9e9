//! The router path's response body: the invoker's `InvokeHttp` reply is a
//! stream of `HttpBodyChunk` messages, and the filter drops their gRPC
//! framing as the body passes, chunk by chunk, mostly without reading it.

/// Removes the gRPC framing from an `InvokeHttp` response body as it
/// passes through, chunk by chunk: every message is an `HttpBodyChunk`
/// (`0x0a`, a varint length, the bytes), behind gRPC's 5-byte prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deframer {
    /// Body bytes of the current message still to pass.
    data_left: usize,
    /// Framing bytes of the next message seen so far (a header can be
    /// split across chunks).
    header: Vec<u8>,
}

/// What to do with one chunk of the response body.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkEdit {
    /// Pass it as it is.
    Keep,
    /// Drop its first `n` bytes (framing) and pass the rest.
    DropFront(usize),
}

/// Longest framing: the 5-byte prefix, the field tag and a 5-byte varint.
pub const MAX_FRAMING_BYTES: usize = 11;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the invoker's reply is not a stream of HttpBodyChunk messages: {0}")]
pub struct DeframeError(&'static str);

impl Deframer {
    /// The edit for a chunk of `len` bytes that starts with `head` (its
    /// first [`MAX_FRAMING_BYTES`] bytes or all of it), when that is enough
    /// to decide: the chunk has at most one framing, at its start. `None`:
    /// call [`Deframer::rewrite`] with the whole chunk.
    pub fn quick_edit(
        &mut self,
        head: &[u8],
        len: usize,
    ) -> Result<Option<ChunkEdit>, DeframeError> {
        if len <= self.data_left {
            self.data_left -= len;
            return Ok(Some(ChunkEdit::Keep));
        }
        if self.data_left > 0 || !self.header.is_empty() {
            return Ok(None);
        }
        let Some((framing, data)) = parse_framing(head)? else {
            return Ok(None);
        };
        if framing + data < len {
            // Another message starts in this chunk.
            return Ok(None);
        }
        self.data_left = data - (len - framing);
        Ok(Some(ChunkEdit::DropFront(framing)))
    }

    /// The chunk without its framing bytes.
    pub fn rewrite(&mut self, chunk: &[u8]) -> Result<Vec<u8>, DeframeError> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.data_left > 0 {
                let (data, after) = rest.split_at(self.data_left.min(rest.len()));
                out.extend_from_slice(data);
                self.data_left -= data.len();
                rest = after;
                continue;
            }
            // Collect framing bytes until the header parses.
            let before = self.header.len();
            let (taken, _) = rest.split_at((MAX_FRAMING_BYTES - before).min(rest.len()));
            self.header.extend_from_slice(taken);
            let used = match parse_framing(&self.header)? {
                Some((framing, data)) => {
                    self.header.clear();
                    self.data_left = data;
                    framing - before
                }
                None => taken.len(),
            };
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(out)
    }

    /// Whether the body ended between messages.
    pub fn is_at_boundary(&self) -> bool {
        self.data_left == 0 && self.header.is_empty()
    }
}

/// Parses one message's framing at the start of `bytes`: `Some((framing
/// length, data length))`, or `None` when more bytes are needed.
fn parse_framing(bytes: &[u8]) -> Result<Option<(usize, usize)>, DeframeError> {
    let Some(([flag, l0, l1, l2, l3], rest)) = bytes.split_first_chunk::<5>() else {
        return Ok(None);
    };
    if *flag != 0 {
        return Err(DeframeError("a compressed message"));
    }
    let message = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
    if message == 0 {
        return Ok(Some((5, 0)));
    }
    let Some((&tag, varint)) = rest.split_first() else {
        return Ok(None);
    };
    if tag != 0x0a {
        return Err(DeframeError("a message with another field"));
    }
    let mut data: usize = 0;
    for (i, &b) in varint.iter().enumerate().take(5) {
        data |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let framing = 6 + i + 1;
            if framing - 5 + data != message {
                return Err(DeframeError("a message with more than its bytes"));
            }
            return Ok(Some((framing, data)));
        }
    }
    if bytes.len() >= MAX_FRAMING_BYTES {
        return Err(DeframeError("a length that does not end"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::router::grpc_frame;
    use lambdagate_proto::HttpBodyChunk;
    use prost::Message as _;

    fn frame(data: &[u8]) -> Vec<u8> {
        grpc_frame(
            &HttpBodyChunk {
                data: data.to_vec().into(),
            }
            .encode_to_vec(),
        )
    }

    /// Feeds `wire` cut at `cuts` through the deframer the way the filter
    /// does (quick edit first, else rewrite) and returns the body.
    fn deframe(wire: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut d = Deframer::default();
        let mut out = Vec::new();
        let mut start = 0;
        let mut ends: Vec<usize> = cuts.to_vec();
        ends.push(wire.len());
        for end in ends {
            let chunk = &wire[start..end];
            let head = &chunk[..chunk.len().min(MAX_FRAMING_BYTES)];
            match d.quick_edit(head, chunk.len()).unwrap() {
                Some(ChunkEdit::Keep) => out.extend_from_slice(chunk),
                Some(ChunkEdit::DropFront(n)) => out.extend_from_slice(&chunk[n..]),
                None => out.extend(d.rewrite(chunk).unwrap()),
            }
            start = end;
        }
        assert!(d.is_at_boundary());
        out
    }

    #[test]
    fn one_message_in_one_chunk_drops_only_its_framing() {
        let body = vec![7u8; 300];
        let wire = frame(&body);
        let mut d = Deframer::default();
        let edit = d
            .quick_edit(&wire[..MAX_FRAMING_BYTES], wire.len())
            .unwrap();
        assert_eq!(edit, Some(ChunkEdit::DropFront(5 + 1 + 2)));
        assert!(d.is_at_boundary());
    }

    #[test]
    fn any_cut_of_any_messages_gives_the_body_back() {
        let parts: [&[u8]; 4] = [b"hello ", b"", &[0xff; 200], b"world"];
        let wire: Vec<u8> = parts.iter().flat_map(|p| frame(p)).collect();
        let body: Vec<u8> = parts.concat();
        for a in 0..wire.len() {
            for b in a..wire.len() {
                assert_eq!(deframe(&wire, &[a, b]), body, "cuts at {a} and {b}");
            }
        }
    }

    #[test]
    fn a_big_message_across_chunks_is_edited_without_copies() {
        let body = vec![1u8; 1 << 20];
        let wire = frame(&body);
        let mut d = Deframer::default();
        let first = 16384;
        assert_eq!(
            d.quick_edit(&wire[..MAX_FRAMING_BYTES], first).unwrap(),
            Some(ChunkEdit::DropFront(5 + 1 + 3))
        );
        let mut at = first;
        while at < wire.len() {
            let len = (wire.len() - at).min(65536);
            assert_eq!(
                d.quick_edit(&wire[at..at + len.min(MAX_FRAMING_BYTES)], len)
                    .unwrap(),
                Some(ChunkEdit::Keep)
            );
            at += len;
        }
        assert!(d.is_at_boundary());
    }

    #[test]
    fn framing_that_is_not_ours_is_an_error() {
        let mut d = Deframer::default();
        assert!(d.rewrite(&[1, 0, 0, 0, 2, 0x0a, 0]).is_err(), "compressed");
        let mut d = Deframer::default();
        assert!(d.rewrite(&[0, 0, 0, 0, 2, 0x12, 0]).is_err(), "field 2");
        let mut d = Deframer::default();
        assert!(
            d.rewrite(&[0, 0, 0, 0, 9, 0x0a, 1, 0]).is_err(),
            "extra bytes"
        );
        let mut d = Deframer::default();
        assert!(
            d.rewrite(&[0, 0, 0, 0, 9, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff])
                .is_err(),
            "endless varint"
        );
    }
}
