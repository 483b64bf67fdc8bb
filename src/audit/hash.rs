//! SHA-256 digests and their lower-case hex form.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev` of the first record: 64 zeros.
pub const ZERO_HASH: Hash = [0u8; 32];

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Appends the lower-case hex of `bytes` to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        // Upper case is refused: every hash has exactly one spelling, so a
        // changed byte of a proof or a record is never "the same" value.
        _ => None,
    }
}

/// Decodes lower-case hex into exactly `N` bytes.
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
    }
    Some(out)
}

/// Decodes a 64-character lower-case hex SHA-256.
pub fn hash_from_hex(s: &str) -> Option<Hash> {
    from_hex::<32>(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_hex_round_trip_and_strictness() {
        let h = sha256(b"abc");
        assert_eq!(
            to_hex(&h),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_from_hex(&to_hex(&h)), Some(h));
        assert_eq!(hash_from_hex(&to_hex(&h).to_uppercase()), None);
        assert_eq!(hash_from_hex("00"), None);
    }
}
