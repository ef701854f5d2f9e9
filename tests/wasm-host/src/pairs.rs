//! The proxy-wasm serialized map format: u32 count, then (u32 key_len,
//! u32 value_len) per pair, then `key\0value\0` per pair. Little-endian.

/// Serializes pairs. An empty map is 4 zero bytes.
pub(crate) fn serialize<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&len_u32(key.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len_u32(value.as_ref().len()).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    out
}

/// Parses pairs. Like Envoy, a buffer too short for its header is an empty
/// map; a malformed body (lengths past the end) is also an empty map.
pub(crate) fn deserialize(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    parse(bytes).unwrap_or_default()
}

fn parse(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let count = read_u32(bytes, 0)? as usize;
    let mut sizes_at = 4usize;
    let mut data_at = count.checked_mul(8)?.checked_add(4)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let key_len = read_u32(bytes, sizes_at)? as usize;
        let value_len = read_u32(bytes, sizes_at + 4)? as usize;
        sizes_at += 8;
        let key = bytes.get(data_at..data_at.checked_add(key_len)?)?.to_vec();
        data_at += key_len + 1;
        let value = bytes
            .get(data_at..data_at.checked_add(value_len)?)?
            .to_vec();
        data_at += value_len + 1;
        pairs.push((key, value));
    }
    Some(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(word))
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Lossy UTF-8, for header names and values in records.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs = vec![
            (":path".as_bytes().to_vec(), b"/x".to_vec()),
            (b"a".to_vec(), Vec::new()),
        ];
        let bytes = serialize(&pairs);
        assert_eq!(bytes.len(), 4 + 2 * 8 + (5 + 1 + 2 + 1) + (1 + 1 + 1));
        assert_eq!(deserialize(&bytes), pairs);
    }

    #[test]
    fn short_or_malformed_is_empty() {
        assert!(deserialize(&[]).is_empty());
        assert!(deserialize(&[1, 0, 0, 0]).is_empty());
        assert!(deserialize(&[1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, b'a', 0]).is_empty());
    }
}
