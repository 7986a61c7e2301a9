//! A certificate with its private key, as Azure DevOps stores a service principal's
//! (`servicePrincipalCertificate`: PEM, the certificate and an RSA key). Parsed and used by
//! each runtime's own crypto: ring natively, Node's `crypto` module under the agent.

/// What a client assertion needs from a certificate.
pub trait SigningCertificate {
    /// SHA-1 of the certificate's DER (`x5t`).
    fn thumbprint_sha1(&self) -> Vec<u8>;
    /// SHA-256 of the certificate's DER (`x5t#S256`).
    fn thumbprint_sha256(&self) -> Vec<u8>;
    /// An RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `data` with the private key.
    fn sign_rs256(&self, data: &[u8]) -> Result<Vec<u8>, String>;
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::load;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::rc::Rc;

    use ring::rand::SystemRandom;
    use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    use super::SigningCertificate;

    struct RingCertificate {
        der: Vec<u8>,
        key: RsaKeyPair,
    }

    /// Parses the PEM text: the first certificate and the RSA private key. Errors say what is
    /// missing or wrong, never quoting the text (it holds the key).
    pub fn load(pem: &str) -> Result<Rc<dyn SigningCertificate>, String> {
        let der = CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .ok_or("it holds no certificate (-----BEGIN CERTIFICATE-----)")?
            .map_err(|_| "its certificate block is not valid PEM")?;
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            "it holds no private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)"
        })?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(
                    "its private key is not an RSA key; Microsoft Entra certificates use RSA"
                        .into(),
                )
            }
        }
        .map_err(|e| format!("its private key cannot be used: {e}"))?;
        Ok(Rc::new(RingCertificate {
            der: der.to_vec(),
            key,
        }))
    }

    impl SigningCertificate for RingCertificate {
        fn thumbprint_sha1(&self) -> Vec<u8> {
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der)
                .as_ref()
                .to_vec()
        }

        fn thumbprint_sha256(&self) -> Vec<u8> {
            ring::digest::digest(&ring::digest::SHA256, &self.der)
                .as_ref()
                .to_vec()
        }

        fn sign_rs256(&self, data: &[u8]) -> Result<Vec<u8>, String> {
            let mut signature = vec![0; self.key.public().modulus_len()];
            self.key
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    data,
                    &mut signature,
                )
                .map_err(|_| "the private key could not sign".to_string())?;
            Ok(signature)
        }
    }
}
