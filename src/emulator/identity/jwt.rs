//! JSON Web Tokens as the parties exchange them: compact form, HS256 for the tokens the
//! emulator signs itself, and a parsed view for checking the ones clients present.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde_json::{Map, Value};

/// A compact JWT split into its parts. Parsing checks only the shape; what a signature or a
/// claim must be is for the party that reads it.
pub(crate) struct Jwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `header.claims`, the bytes the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl Jwt {
    pub fn parse(token: &str) -> Option<Jwt> {
        let mut parts = token.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let object = |part: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(map) => Some(map),
                _ => None,
            }
        };
        Some(Jwt {
            header: object(header)?,
            claims: object(claims)?,
            signing_input: format!("{header}.{claims}"),
            signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim; fractions are cut (some clients write `exp` as a float).
    pub fn claim_secs(&self, name: &str) -> Option<u64> {
        let value = self.claims.get(name)?;
        value
            .as_u64()
            .or_else(|| value.as_f64().filter(|v| *v >= 0.0).map(|v| v as u64))
    }

    /// `aud` is a string or an array of strings.
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// Signs `claims` with HS256 under `key`.
pub(crate) fn encode_hs256(key: &hmac::Key, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let tag = hmac::sign(key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Whether `jwt` is HS256 and signed under `key` (compared in constant time by ring).
pub(crate) fn verify_hs256(key: &hmac::Key, jwt: &Jwt) -> bool {
    jwt.header_str("alg") == Some("HS256")
        && hmac::verify(key, jwt.signing_input.as_bytes(), &jwt.signature).is_ok()
}

/// Encodes without signing, for tests that build assertions by hand.
#[cfg(test)]
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(byte: u8) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[byte; 32])
    }

    #[test]
    fn round_trips_and_checks_the_key() {
        let token = encode_hs256(&key(1), &json!({"sub": "a", "exp": 5, "aud": ["x", "y"]}));
        let jwt = Jwt::parse(&token).unwrap();
        assert!(verify_hs256(&key(1), &jwt));
        assert!(!verify_hs256(&key(2), &jwt));
        assert_eq!(jwt.claim_str("sub"), Some("a"));
        assert_eq!(jwt.claim_secs("exp"), Some(5));
        assert_eq!(jwt.audiences(), ["x", "y"]);
    }

    #[test]
    fn a_changed_claim_breaks_the_signature() {
        let token = encode_hs256(&key(1), &json!({"sub": "a"}));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(br#"{"sub":"b"}"#);
        parts[1] = &forged;
        let jwt = Jwt::parse(&parts.join(".")).unwrap();
        assert_eq!(jwt.claim_str("sub"), Some("b"));
        assert!(!verify_hs256(&key(1), &jwt));
    }

    #[test]
    fn refuses_what_is_not_a_jwt() {
        for text in ["", "a.b", "a.b.c.d", "e30.e30", "!!.e30.", "W10.e30."] {
            assert!(Jwt::parse(text).is_none(), "{text}");
        }
        assert!(Jwt::parse("e30.e30.").is_some());
    }
}
