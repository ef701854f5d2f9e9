//! Stable short ids derived from names (API Gateway's `apiId` and
//! `resourceId`, the JWT payload headers): the same on every deploy.

/// FNV-1a, 64 bits: a stable short hash for ids (not for security).
pub(crate) fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// `len` characters of `[0-9a-z]` from a hash, as API Gateway's ids look.
pub(crate) fn base36_id(mut hash: u64, len: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = String::with_capacity(len);
    for _ in 0..len {
        let digit = usize::try_from(hash % 36).unwrap_or(0);
        id.push(char::from(DIGITS.get(digit).copied().unwrap_or(b'0')));
        hash /= 36;
    }
    id
}
