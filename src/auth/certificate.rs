//! A client assertion signed with a certificate: how an application proves who it is to
//! Microsoft Entra without a secret on the wire.

pub use crate::host::certificate::SigningCertificate;
use crate::rest::ApiError;

use super::jwt::{base64url, encode_unsigned};

/// Assertions are valid this long; Entra accepts up to ten minutes.
const LIFETIME_SECS: u64 = 600;

impl dyn SigningCertificate {
    /// `header.claims.signature` for `client_id` at the token endpoint `audience`.
    pub fn client_assertion(
        &self,
        client_id: &str,
        audience: &str,
        now_unix: u64,
    ) -> Result<String, ApiError> {
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": base64url(&self.thumbprint_sha1()),
            "x5t#S256": base64url(&self.thumbprint_sha256()),
        });
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": unique_id(now_unix),
            "nbf": now_unix,
            "iat": now_unix,
            "exp": now_unix + LIFETIME_SECS,
        });
        let unsigned = encode_unsigned(&header, &claims);
        let signature = self
            .sign_rs256(unsigned.as_bytes())
            .map_err(|reason| ApiError::SignIn {
                message: format!("the service connection's certificate could not sign the sign-in request: {reason}"),
                hint: None,
            })?;
        Ok(format!("{unsigned}.{}", base64url(&signature)))
    }
}

/// A fresh `jti` for each assertion: Entra refuses an assertion id it has seen.
fn unique_id(now_unix: u64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut rng = fastrand::Rng::with_seed(now_unix ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    format!("{:016x}{:016x}-{count}", rng.u64(..), rng.u64(..))
}
