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

/// Why a given key pair cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GivenKeyError {
    /// Access keys are 3-128 of letters, digits and `. _ - + = @` (MinIO's minimum, AWS's
    /// maximum).
    #[error("access keys are 3-128 characters of A-Z a-z 0-9 . _ - + = @")]
    AccessKey,
    /// Secret keys are 8-128 printable ASCII characters without spaces (MinIO's minimum).
    #[error("secret keys are 8-128 printable ASCII characters without spaces")]
    SecretKey,
    /// One was given without the other.
    #[error("give both an access key and a secret key, or neither")]
    Half,
}

/// The key pair a request brings (`None`: generate one), checked against the length and
/// character rules AWS and MinIO clients expect.
pub fn given_key_pair(
    access_key: Option<&str>,
    secret_key: Option<&str>,
) -> Result<Option<(String, String)>, GivenKeyError> {
    let (ak, sk) = match (access_key, secret_key) {
        (None, None) => return Ok(None),
        (Some(a), Some(s)) => (a, s),
        _ => return Err(GivenKeyError::Half),
    };
    let ak_ok = (3..=128).contains(&ak.len())
        && ak
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+=@".contains(c));
    if !ak_ok {
        return Err(GivenKeyError::AccessKey);
    }
    if !(8..=128).contains(&sk.len()) || !sk.chars().all(|c| c.is_ascii_graphic()) {
        return Err(GivenKeyError::SecretKey);
    }
    Ok(Some((ak.to_owned(), sk.to_owned())))
}

/// Compares two secrets in time that depends only on their lengths.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_keys_follow_the_length_and_character_rules() {
        assert_eq!(given_key_pair(None, None), Ok(None));
        assert!(given_key_pair(Some("minioadmin"), Some("minioadmin")).is_ok_and(|k| k.is_some()));
        assert_eq!(
            given_key_pair(Some("ak"), Some("secret123")),
            Err(GivenKeyError::AccessKey)
        );
        assert_eq!(
            given_key_pair(Some("a k x"), Some("secret123")),
            Err(GivenKeyError::AccessKey)
        );
        assert_eq!(
            given_key_pair(Some("AKIAX"), Some("short")),
            Err(GivenKeyError::SecretKey)
        );
        assert_eq!(
            given_key_pair(Some("AKIAX"), Some("has space 123")),
            Err(GivenKeyError::SecretKey)
        );
        assert_eq!(
            given_key_pair(Some("AKIAX"), None),
            Err(GivenKeyError::Half)
        );
        assert!(given_key_pair(Some(&"A".repeat(129)), Some("secret123")).is_err());
    }
}
