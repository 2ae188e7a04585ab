//! The Ed25519 key that signs OS packages, as a trait: an in-memory key
//! (`ed25519_dalek::SigningKey`) implements it, and so does a key on a PKCS#11 token on the
//! host (`nekos_build::pkcs11`), which never hands out the private key.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// Makes pure Ed25519 signatures (RFC 8032, deterministic) and names its public key.
pub trait Ed25519Signer {
    /// The public key, compared against the signing certificate before signing.
    fn verifying_key(&self) -> VerifyingKey;
    /// The 64-byte signature over `message`, or why the key could not sign.
    fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; 64], String>;
}

impl Ed25519Signer for SigningKey {
    fn verifying_key(&self) -> VerifyingKey {
        SigningKey::verifying_key(self)
    }

    fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; 64], String> {
        Ok(self.sign(message).to_bytes())
    }
}

/// So callers holding `&SigningKey` (e.g. from iterating a slice of pairs) pass it as is.
impl<T: Ed25519Signer + ?Sized> Ed25519Signer for &T {
    fn verifying_key(&self) -> VerifyingKey {
        (**self).verifying_key()
    }

    fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; 64], String> {
        (**self).sign_ed25519(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_signs_as_dalek_does() {
        let k = SigningKey::from_bytes(&[3u8; 32]);
        let s: &dyn Ed25519Signer = &k;
        assert_eq!(s.verifying_key(), k.verifying_key());
        assert_eq!(
            s.sign_ed25519(b"zip digest"),
            Ok(k.sign(b"zip digest").to_bytes())
        );
    }
}
