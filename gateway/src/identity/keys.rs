//! Credentials made and compared: random access keys, secrets and session tokens, and the
//! constant-time comparison every secret goes through.

use rand::Rng as _;

/// A random string of `len` characters drawn from `alphabet`.
#[must_use]
pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| {
            let i = rng.random_range(0..alphabet.len());
            char::from(alphabet.get(i).copied().unwrap_or(b'A'))
        })
        .collect()
}

/// A new access key pair: 20 upper-case characters and a 40-character secret.
#[must_use]
pub fn new_key_pair() -> (String, String) {
    (
        random_string(20, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
        random_string(
            40,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        ),
    )
}

/// Compares two secrets in time that depends only on their lengths.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
