//! Reading the claims of a JSON Web Token we were handed, without checking it (the identity
//! provider checks it): to tell the user which issuer and subject the pipeline presented.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
}

/// The claims of `token`, or `None` when it is not a JWT.
pub fn peek(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A signed JWT: `header.claims.signature`, each base64url without padding.
pub fn encode_unsigned(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}", part(header), part(claims))
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::{encode_unsigned, peek};

    #[test]
    fn the_claims_of_a_token_are_read_without_its_signature() {
        let token = format!(
            "{}.c2ln",
            encode_unsigned(
                &serde_json::json!({"alg": "RS256"}),
                &serde_json::json!({"iss": "https://vstoken.dev.azure.com/o", "sub": "sc://org/p/c"})
            )
        );
        let claims = peek(&token).unwrap();
        assert_eq!(
            claims.iss.as_deref(),
            Some("https://vstoken.dev.azure.com/o")
        );
        assert_eq!(claims.sub.as_deref(), Some("sc://org/p/c"));
        assert_eq!(peek("not-a-jwt"), None);
        assert_eq!(peek("a.!!!.c"), None);
    }
}
