//! TLS 1.3-only rustls configurations (ring provider) and the accept-any-or-pinned verifier.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, ServerConfig,
    SignatureScheme,
};
use sha2::{Digest, Sha256};

use crate::{ServerCert, WssError};

/// ALPN: what a browser's HTTPS connection that will upgrade to a WebSocket offers.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The SHA-256 of a DER certificate: the value [`WssConfig::pin_sha256`](crate::WssConfig::pin_sha256)
/// compares with the server's end-entity certificate.
#[must_use]
pub fn cert_sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration: TLS 1.3 only, any certificate or the pinned one.
pub(crate) fn client_config(pin: Option<[u8; 32]>) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = provider();
    let verifier = Arc::new(AnyOrPinned {
        pin,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// The server configuration: TLS 1.3 only, no client certificates.
pub(crate) fn server_config(cert: ServerCert) -> Result<Arc<ServerConfig>, WssError> {
    let (chain, key) = cert.into_parts();
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| WssError::ServerCert {
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any server certificate (the outer TLS is camouflage; Noise inside authenticates), or
/// only the one whose SHA-256 is pinned. Either way the handshake signature is verified with the
/// certificate's key, so a pinned certificate cannot be replayed without its key.
struct AnyOrPinned {
    pin: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for AnyOrPinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyOrPinned")
            .field("pinned", &self.pin.is_some())
            .finish_non_exhaustive()
    }
}

/// The certificate is not the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("the server's certificate does not match the pinned SHA-256")]
struct PinMismatch;

/// Whether a failed TLS connect failed because of the pin (to say so plainly).
pub(crate) fn is_pin_mismatch(error: &std::io::Error) -> bool {
    let Some(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(other)))) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return false;
    };
    other.downcast_ref::<PinMismatch>().is_some()
}

impl ServerCertVerifier for AnyOrPinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            Some(pin) if cert_sha256(end_entity) != pin => Err(rustls::Error::InvalidCertificate(
                CertificateError::Other(OtherError(Arc::new(PinMismatch))),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
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
    fn the_pin_is_the_sha256_of_the_der_certificate() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let expected = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ];

        assert_eq!(cert_sha256(b"abc"), expected);
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let a = ServerCert::self_signed(&["a.example".into()]).unwrap();
        let b = ServerCert::self_signed(&["b.example".into()]).unwrap();
        let (chain, _) = a.into_parts();
        let (_, key) = b.into_parts();

        let result = server_config(ServerCert::new(chain, key));

        assert!(matches!(result, Err(WssError::ServerCert { .. })));
    }
}
