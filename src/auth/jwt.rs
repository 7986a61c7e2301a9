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
    /// The application an Entra access token was issued to (v1 tokens; `azp` in v2 ones).
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    /// The tenant of an Entra token.
    #[serde(default)]
    pub tid: Option<String>,
}

impl Claims {
    /// The application and tenant ids an Entra access token names, each only if it looks
    /// like an id (letters, digits and `-`): read to say who signed in, never trusted.
    pub fn application_and_tenant(&self) -> Option<(String, Option<String>)> {
        let id = |value: &Option<String>| {
            value
                .as_deref()
                .filter(|v| {
                    !v.is_empty()
                        && v.len() <= 64
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
                .map(str::to_string)
        };
        let application = id(&self.appid).or_else(|| id(&self.azp))?;
        Some((application, id(&self.tid)))
    }
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
