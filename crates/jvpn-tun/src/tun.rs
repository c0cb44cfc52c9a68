//! `Tun`: one configured TUN device that reads and writes whole IP packets.

use std::fmt;
use std::io;

use crate::config::TunConfig;
use crate::error::TunError;

/// A TUN device that is up, with its addresses, MTU and routes configured.
///
/// One [`recv`](Self::recv) returns one IP packet (IPv4 or IPv6, no extra header); one
/// [`send`](Self::send) injects one. Both take `&self`, so one task may read while another
/// writes (share the `Tun` in an `Arc`). Neither allocates.
///
/// # Cleanup
///
/// The device is not persistent: dropping the `Tun` closes its file descriptor, and the kernel
/// then deletes the interface together with its addresses and every route through it. Nothing
/// else needs undoing, and a crashed process leaves nothing behind either.
pub struct Tun {
    #[cfg(target_os = "linux")]
    inner: crate::linux::Device,
    mtu: u16,
}

impl fmt::Debug for Tun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name())
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

impl Tun {
    /// Creates the device, sets its MTU, brings it up, adds its addresses, then the routes.
    ///
    /// Must be called inside a tokio runtime (the device registers with its reactor);
    /// otherwise [`TunError::NoRuntime`]. Needs CAP_NET_ADMIN. On any failure after the device
    /// exists, the device is removed again before the error is returned.
    pub fn create(config: &TunConfig) -> Result<Tun, TunError> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TunError::NoRuntime);
        }
        Self::create_platform(config)
    }

    #[cfg(target_os = "linux")]
    fn create_platform(config: &TunConfig) -> Result<Tun, TunError> {
        let inner = crate::linux::create(config)?;
        Ok(Tun {
            inner,
            mtu: config.mtu,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn create_platform(_config: &TunConfig) -> Result<Tun, TunError> {
        Err(TunError::Unsupported {
            platform: std::env::consts::OS,
        })
    }

    /// The interface name the kernel gave the device (e.g. `jvpn0`).
    pub fn name(&self) -> &str {
        #[cfg(target_os = "linux")]
        {
            &self.inner.name
        }
        #[cfg(not(target_os = "linux"))]
        {
            ""
        }
    }

    /// The MTU the device was configured with: the largest packet [`send`](Self::send) accepts
    /// and [`recv`](Self::recv) returns. Size receive buffers to at least this.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// Waits for one IP packet from the kernel and copies it into `buf`; returns its length.
    /// A `buf` shorter than the packet truncates it (use at least [`mtu`](Self::mtu) bytes).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            self.inner.device.recv(buf).await
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = buf;
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    /// Takes one queued IP packet without waiting; `WouldBlock` when none is queued. Lets a
    /// caller drain a burst in one turn of its loop instead of one turn per packet.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            self.inner.device.try_recv(buf)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = buf;
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    /// Hands one IP packet to the kernel, as if it had arrived on this interface.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let written = self.inner.device.send(packet).await?;
            // A TUN write is all or nothing; anything else means the packet was cut.
            if written != packet.len() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "short write to the TUN device",
                ));
            }
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = packet;
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_outside_a_tokio_runtime_is_an_error_not_a_panic() {
        let config = TunConfig {
            name: None,
            addresses: vec!["10.201.0.1/32".parse().unwrap()],
            mtu: 1400,
            routes: Vec::new(),
        };

        let result = Tun::create(&config);

        assert!(matches!(result, Err(TunError::NoRuntime)), "{result:?}");
    }

    #[test]
    fn an_invalid_config_is_refused_before_any_system_call() {
        let config = TunConfig {
            name: Some("this-name-is-far-too-long".into()),
            addresses: Vec::new(),
            mtu: 1400,
            routes: Vec::new(),
        };

        let result = Tun::create(&config);

        assert!(
            matches!(result, Err(TunError::InvalidName { .. })),
            "{result:?}"
        );
    }
}
