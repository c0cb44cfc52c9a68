//! The outer TLS 1.3 of QUIC: the server's certificate, the client's pin check, rustls configs.
//!
//! This TLS is **not** jvpn's security boundary (the Noise handshake inside is); it exists
//! because QUIC cannot run without it. Hence a self-signed certificate by default, and a client
//! that accepts any certificate unless a pin is configured. Even without a pin the client still
//! checks the server's TLS 1.3 signature against the certificate it presented.

use std::fmt;
use std::sync::{Arc, Mutex};

use quinn::rustls::{
    self, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime},
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::QuicError;

/// A server certificate chain (DER, end-entity first) and its private key (DER: PKCS#8, PKCS#1
/// or SEC1).
///
/// The key is zeroized on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct ServerCert {
    cert_chain: Vec<Vec<u8>>,
    key_der: Zeroizing<Vec<u8>>,
}

impl ServerCert {
    /// A certificate chain (end-entity first) and its private key, both DER.
    ///
    /// The pair is checked when the listener starts ([`QuicError::Certificate`] if unusable).
    #[must_use]
    pub fn new(cert_chain: Vec<Vec<u8>>, key_der: Vec<u8>) -> Self {
        Self {
            cert_chain,
            key_der: Zeroizing::new(key_der),
        }
    }

    /// A fresh self-signed certificate (ECDSA P-256) for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    /// [`QuicError::SelfSigned`] if rcgen fails (e.g. a name it cannot encode).
    pub fn self_signed(names: Vec<String>) -> Result<Self, QuicError> {
        let certified = rcgen::generate_simple_self_signed(names).map_err(QuicError::SelfSigned)?;
        Ok(Self::new(
            vec![certified.cert.der().to_vec()],
            certified.signing_key.serialize_der(),
        ))
    }

    /// The certificate chain, end-entity first.
    #[must_use]
    pub fn cert_chain(&self) -> &[Vec<u8>] {
        &self.cert_chain
    }

    /// The SHA-256 of the end-entity certificate's DER: the value a client pins
    /// ([`QuicConfig::pin_sha256`](crate::QuicConfig::pin_sha256)). All zeros for an empty chain.
    #[must_use]
    pub fn sha256(&self) -> [u8; 32] {
        self.cert_chain
            .first()
            .map_or([0; 32], |der| fingerprint(der))
    }

    fn to_rustls(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), QuicError> {
        let chain = self
            .cert_chain
            .iter()
            .map(|der| CertificateDer::from(der.clone()))
            .collect();
        let key = PrivateKeyDer::try_from(self.key_der.to_vec())
            .map_err(|why| QuicError::Certificate(rustls::Error::General(why.to_owned())))?;
        Ok((chain, key))
    }
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCert")
            .field("sha256", &crate::error::hex(&self.sha256()))
            .field("chain_len", &self.cert_chain.len())
            .field("key_der", &"<redacted>")
            .finish()
    }
}

/// SHA-256 of a certificate's DER.
pub(crate) fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// The only crypto provider used: ring (aws-lc-rs needs cmake).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's rustls config: TLS 1.3 only, no client certificates, our ALPN only.
pub(crate) fn server_config(
    cert: &ServerCert,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, QuicError> {
    let (chain, key) = cert.to_rustls()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(QuicError::Certificate)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(QuicError::Certificate)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// The client's rustls config for one connection attempt: TLS 1.3 only, our ALPN, and the
/// [`PinVerifier`] (returned too, so a failed handshake can say which certificate was seen).
pub(crate) fn client_config(
    pin: Option<[u8; 32]>,
    alpn: &[u8],
) -> Result<(rustls::ClientConfig, Arc<PinVerifier>), QuicError> {
    let provider = provider();
    let verifier = Arc::new(PinVerifier {
        pin,
        algorithms: provider.signature_verification_algorithms,
        seen: Mutex::new(None),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(QuicError::Certificate)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok((config, verifier))
}

/// Accepts the server's certificate if its SHA-256 matches the pin, or any certificate without a
/// pin (see the module docs for why that is acceptable here). Handshake signatures are always
/// verified, so the server must hold the key of the certificate it shows.
#[derive(Debug)]
pub(crate) struct PinVerifier {
    pin: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
    /// The fingerprint of a certificate that failed the pin, for the error message.
    seen: Mutex<Option<[u8; 32]>>,
}

impl PinVerifier {
    /// The pinned and the presented fingerprints if the last handshake failed the pin.
    pub(crate) fn mismatch(&self) -> Option<([u8; 32], [u8; 32])> {
        let seen = *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some((self.pin?, seen?))
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let actual = fingerprint(end_entity);
        if actual == pin {
            Ok(ServerCertVerified::assertion())
        } else {
            *self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(actual);
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable in practice: the config offers TLS 1.3 only (QUIC mandates it).
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_has_one_cert_and_a_stable_fingerprint() {
        let cert = ServerCert::self_signed(vec!["jvpn".into()]).unwrap();
        assert_eq!(cert.cert_chain().len(), 1);
        assert_eq!(cert.sha256(), fingerprint(&cert.cert_chain()[0]));
        assert_ne!(cert.sha256(), [0; 32]);
    }

    #[test]
    fn debug_of_a_server_cert_never_shows_the_key() {
        let cert = ServerCert::new(vec![vec![1, 2, 3]], vec![0xAA; 16]);
        let shown = format!("{cert:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("170"), "{shown}");
    }

    #[test]
    fn a_key_that_is_not_der_is_a_certificate_error() {
        let cert = ServerCert::new(vec![vec![1, 2, 3]], vec![0xAA; 16]);
        let err = server_config(&cert, b"jvpn/1").unwrap_err();
        assert!(matches!(err, QuicError::Certificate(_)), "{err:?}");
    }
}
