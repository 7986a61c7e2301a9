//! An application's certificate credential: its thumbprints (how an assertion names the key)
//! and checking an RS256 signature with its public key. Parsing and RSA are rustls-webpki's
//! and ring's, not ours.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

pub(crate) struct Certificate {
    der: CertificateDer<'static>,
    /// Base64url SHA-1 of the DER: the `x5t` header of assertions signed with its key.
    pub x5t: String,
    /// Base64url SHA-256 of the DER: `x5t#S256`.
    pub x5t_s256: String,
}

impl Certificate {
    /// The first certificate in `pem` (a private key next to it, as Azure DevOps stores
    /// `servicePrincipalCertificate`, is skipped).
    pub fn from_pem(pem: &str) -> anyhow::Result<Certificate> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("no PEM certificate found: {e}"))?;
        webpki::EndEntityCert::try_from(&der)
            .map_err(|e| anyhow::anyhow!("the certificate cannot be parsed: {e}"))?;
        Ok(Certificate {
            x5t: thumbprint(&der, &digest::SHA1_FOR_LEGACY_USE_ONLY),
            x5t_s256: thumbprint(&der, &digest::SHA256),
            der,
        })
    }

    /// Whether `signature` is this certificate's key's RSASSA-PKCS1-v1_5 SHA-256 signature of
    /// `message`.
    pub fn verifies_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        webpki::EndEntityCert::try_from(&self.der).is_ok_and(|cert| {
            cert.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok()
        })
    }
}

fn thumbprint(der: &CertificateDer<'_>, algorithm: &'static digest::Algorithm) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(algorithm, der.as_ref()))
}

/// `x5t` as Entra prints it in errors: upper-case hex SHA-1.
pub(crate) fn x5t_as_hex(x5t: &str) -> String {
    URL_SAFE_NO_PAD
        .decode(x5t)
        .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect())
        .unwrap_or_else(|_| x5t.to_string())
}

/// Signs a client assertion the way a client holding the certificate's key does (tests only).
#[cfg(test)]
pub(crate) fn sign_assertion(
    pem: &str,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    use rustls_pki_types::PrivatePkcs8KeyDer;
    let key = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).expect("a PKCS#8 key");
    let key = ring::signature::RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).expect("RSA key");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .expect("signing works");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{OTHER_TEST_CERTIFICATE_PEM, TEST_CERTIFICATE_PEM};
    use serde_json::json;

    #[test]
    fn thumbprint_matches_openssl() {
        let cert = Certificate::from_pem(TEST_CERTIFICATE_PEM).unwrap();
        // `openssl x509 -in test-certificate.pem -noout -fingerprint`
        assert_eq!(
            x5t_as_hex(&cert.x5t),
            "D7CEB1389D3DA5CAAA5DD127102244778F851E2C"
        );
        assert_eq!(cert.x5t_s256.len(), 43);
    }

    #[test]
    fn verifies_its_own_key_and_not_another() {
        let cert = Certificate::from_pem(TEST_CERTIFICATE_PEM).unwrap();
        let good = sign_assertion(TEST_CERTIFICATE_PEM, &json!({"alg": "RS256"}), &json!({}));
        let forged = sign_assertion(
            OTHER_TEST_CERTIFICATE_PEM,
            &json!({"alg": "RS256"}),
            &json!({}),
        );
        for (token, expected) in [(good, true), (forged, false)] {
            let jwt = crate::emulator::identity::jwt::Jwt::parse(&token).unwrap();
            assert_eq!(
                cert.verifies_rs256(jwt.signing_input.as_bytes(), &jwt.signature),
                expected
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert!(Certificate::from_pem("").is_err());
        let key_only = TEST_CERTIFICATE_PEM
            .split("-----END CERTIFICATE-----")
            .nth(1)
            .unwrap();
        assert!(Certificate::from_pem(key_only).is_err());
    }
}
