//! The control socket: how `jvpn status` asks a running tunnel for its [`TunnelStatus`].
//!
//! A Unix stream socket; one JSON request line, one JSON response line, then the server closes:
//!
//! ```text
//! → {"cmd":"status"}
//! ← {"ok":true,"status":{"schema_version":1,"role":"client",…}}
//! ← {"ok":false,"error":"unknown command \"stop\": the only command is \"status\""}
//! ```
//!
//! The socket file gets mode 0600 (only its owner — root for a system tunnel — may ask), and is
//! removed when the [`ControlServer`] is dropped. A request is bounded in size
//! ([`MAX_REQUEST_LEN`]) and time ([`REQUEST_TIMEOUT`]), and at most [`MAX_CONNECTIONS`] are
//! served at once, so a stuck or hostile client cannot pin the tunnel's resources.
//!
//! This module only reads status; it offers no command that changes the tunnel.
#![cfg(unix)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::tunnel::{STATUS_SCHEMA_VERSION, StatusSource, TunnelStatus};

/// Longest request line accepted, in bytes (a request is `{"cmd":"status"}`).
pub const MAX_REQUEST_LEN: usize = 4096;
/// Longest response line read by [`query_status`] (a server with many sessions answers at length).
pub const MAX_RESPONSE_LEN: usize = 16 << 20;
/// How long one request may take, on either side, from connect to the last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests served at the same time; more wait for a slot.
pub const MAX_CONNECTIONS: usize = 16;

/// Which side a control socket belongs to (it names the default socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// `jvpn connect`.
    Client,
    /// `jvpn server`.
    Server,
}

impl Role {
    /// `"client"` or `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// The default control socket of `role`: `/run/jvpn/<role>.sock` for root,
/// `$XDG_RUNTIME_DIR/jvpn-<role>.sock` for other users (or `<tmp>/jvpn-<uid>-<role>.sock` when
/// `XDG_RUNTIME_DIR` is unset).
pub fn default_socket(role: Role) -> PathBuf {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    default_socket_for(role, effective_uid(&status), runtime_dir.as_deref())
}

/// [`default_socket`] for a given effective uid (`None`: unknown, taken as not root) and
/// runtime directory.
pub fn default_socket_for(role: Role, euid: Option<u32>, runtime_dir: Option<&Path>) -> PathBuf {
    let role = role.as_str();
    match (euid, runtime_dir) {
        (Some(0), _) => PathBuf::from(format!("/run/jvpn/{role}.sock")),
        (_, Some(dir)) if dir.is_absolute() => dir.join(format!("jvpn-{role}.sock")),
        (uid, _) => std::env::temp_dir().join(format!(
            "jvpn-{}-{role}.sock",
            uid.map_or_else(|| "user".to_owned(), |u| u.to_string())
        )),
    }
}

/// The effective uid from the text of `/proc/self/status` (`Uid: real effective saved fs`).
fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The control socket could not be served or queried. Each message names the socket and what
/// to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Another jvpn answers on this socket already. Stop it, or give this one another
    /// `--control` path.
    #[error(
        "another jvpn is already running with control socket {}: stop it first, or pass \
         --control with another path",
        .path.display()
    )]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// Something other than a socket exists at the path; it is left alone. Choose another
    /// `--control` path or remove the file.
    #[error(
        "{} exists and is not a socket: pass --control with another path, or remove the file",
        .path.display()
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The socket (or its directory) could not be created: check that the directory is
    /// writable, or pass `--control` with another path.
    #[error(
        "cannot create control socket {}: {source}; check that the directory is writable or pass \
         --control with another path",
        .path.display()
    )]
    Bind {
        /// The socket.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Nothing listens on the socket: no jvpn runs there. Start one, or pass the right
    /// `--control` path.
    #[error(
        "no jvpn running at {}: start one with `jvpn connect` (or `jvpn server`), or pass \
         --control with its socket",
        .path.display()
    )]
    NotRunning {
        /// The socket.
        path: PathBuf,
    },
    /// The socket belongs to another user (root, typically). Run the command as that user,
    /// e.g. with sudo.
    #[error(
        "permission denied on control socket {}: the tunnel runs as another user; try again \
         with sudo",
        .path.display()
    )]
    PermissionDenied {
        /// The socket.
        path: PathBuf,
    },
    /// The running jvpn did not answer within [`REQUEST_TIMEOUT`]; it may be overloaded or stuck.
    #[error(
        "the jvpn at {} did not answer within {:?}: it may be stuck; check its log",
        .path.display(), REQUEST_TIMEOUT
    )]
    Timeout {
        /// The socket.
        path: PathBuf,
    },
    /// Talking over the socket failed midway.
    #[error("control socket {}: {source}", .path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The answer is not what this version understands: the running jvpn is probably another
    /// version. Use the `jvpn` binary that started the tunnel.
    #[error(
        "the jvpn at {} sent an answer this version does not understand ({why}): use the same \
         jvpn version as the running tunnel",
        .path.display()
    )]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What is wrong with the answer.
        why: String,
    },
    /// The running jvpn refused the request (the message is its own).
    #[error("the jvpn at {} answered: {error}", .path.display())]
    Refused {
        /// The socket.
        path: PathBuf,
        /// Its error message.
        error: String,
    },
}

/// A control socket being served. Dropping it stops serving and removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    /// Device and inode of the socket we created, so that drop never removes someone else's.
    identity: Option<(u64, u64)>,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        if self.identity.is_some() && identity_of(&self.path) == self.identity {
            // Best effort: a leftover socket is detected as stale and replaced on next start.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Serves `source`'s status on the Unix socket `path` until the returned server is dropped.
///
/// A stale socket (nothing answers) is replaced; a live one is refused with
/// [`ControlError::InUse`]; a non-socket file is never touched. The parent directory is created
/// (mode 0700) when missing; the socket gets mode 0600.
///
/// # Errors
/// [`ControlError::InUse`], [`ControlError::NotASocket`] or [`ControlError::Bind`].
pub async fn serve(path: &Path, source: StatusSource) -> Result<ControlServer, ControlError> {
    let bind_err = |source| ControlError::Bind {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(bind_err)?;
    }
    remove_if_stale(path).await?;
    let listener = UnixListener::bind(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AddrInUse {
            ControlError::InUse {
                path: path.to_owned(),
            }
        } else {
            bind_err(source)
        }
    })?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            let _ = std::fs::remove_file(path);
            bind_err(e)
        })?;
    }
    let identity = identity_of(path);
    let task = tokio::spawn(accept_loop(listener, source));
    Ok(ControlServer {
        path: path.to_owned(),
        identity,
        task,
    })
}

/// Checks, before a tunnel starts, that [`serve`] will be able to use `path`: no live jvpn
/// answers there and no other kind of file is in the way. A stale socket is removed.
///
/// # Errors
/// [`ControlError::InUse`], [`ControlError::NotASocket`] or [`ControlError::Bind`].
pub async fn check_free(path: &Path) -> Result<(), ControlError> {
    remove_if_stale(path).await
}

/// Asks the jvpn serving `path` for its status.
///
/// # Errors
/// [`ControlError::NotRunning`] when nothing listens there, [`ControlError::PermissionDenied`],
/// [`ControlError::Timeout`], [`ControlError::Refused`], [`ControlError::Protocol`] or
/// [`ControlError::Io`].
pub async fn query_status(path: &Path) -> Result<TunnelStatus, ControlError> {
    let io_err = |source: io::Error| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    let exchange = async {
        let mut stream = UnixStream::connect(path)
            .await
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    ControlError::NotRunning {
                        path: path.to_owned(),
                    }
                }
                io::ErrorKind::PermissionDenied => ControlError::PermissionDenied {
                    path: path.to_owned(),
                },
                _ => io_err(source),
            })?;
        stream
            .write_all(b"{\"cmd\":\"status\"}\n")
            .await
            .map_err(io_err)?;
        let mut line = Vec::new();
        BufReader::new(stream.take(MAX_RESPONSE_LEN as u64 + 1))
            .read_until(b'\n', &mut line)
            .await
            .map_err(io_err)?;
        Ok(line)
    };
    let line = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| ControlError::Timeout {
            path: path.to_owned(),
        })??;
    parse_response(path, &line)
}

fn parse_response(path: &Path, line: &[u8]) -> Result<TunnelStatus, ControlError> {
    let protocol = |why: String| ControlError::Protocol {
        path: path.to_owned(),
        why,
    };
    if line.len() > MAX_RESPONSE_LEN {
        return Err(protocol(format!("longer than {MAX_RESPONSE_LEN} bytes")));
    }
    if line.is_empty() {
        return Err(protocol("the connection closed without an answer".into()));
    }
    let response: Response<serde_json::Value> =
        serde_json::from_slice(line).map_err(|e| protocol(e.to_string()))?;
    if !response.ok {
        return Err(ControlError::Refused {
            path: path.to_owned(),
            error: response
                .error
                .unwrap_or_else(|| "no reason given".to_owned()),
        });
    }
    let value = response
        .status
        .ok_or_else(|| protocol("\"ok\" without a status".into()))?;
    let schema = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64);
    if schema != Some(u64::from(STATUS_SCHEMA_VERSION)) {
        return Err(protocol(format!(
            "status schema version {}, this version reads {STATUS_SCHEMA_VERSION}",
            schema.map_or_else(|| "missing".to_owned(), |v| v.to_string())
        )));
    }
    serde_json::from_value(value).map_err(|e| protocol(e.to_string()))
}

#[derive(Debug, Deserialize)]
struct Request {
    cmd: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Response<S> {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl<S> Response<S> {
    fn error(error: String) -> Self {
        Response {
            ok: false,
            status: None,
            error: Some(error),
        }
    }
}

/// Removes a socket nobody answers on; refuses a live one or a non-socket.
async fn remove_if_stale(path: &Path) -> Result<(), ControlError> {
    use std::os::unix::fs::FileTypeExt as _;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ControlError::Bind {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket {
            path: path.to_owned(),
        });
    }
    match UnixStream::connect(path).await {
        Ok(_) => Err(ControlError::InUse {
            path: path.to_owned(),
        }),
        Err(_) => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ControlError::Bind {
                path: path.to_owned(),
                source,
            }),
        },
    }
}

fn identity_of(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

async fn accept_loop(listener: UnixListener, source: StatusSource) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, say: wait a little rather than spin.
                tracing::warn!(%error, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let source = source.clone();
        tokio::spawn(async move {
            // A client that is too slow is simply dropped.
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, handle(stream, &source)).await;
            drop(permit);
        });
    }
}

async fn handle(stream: UnixStream, source: &StatusSource) {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let read = BufReader::new(read.take(MAX_REQUEST_LEN as u64 + 1))
        .read_until(b'\n', &mut line)
        .await;
    let response = match read {
        Ok(_) => answer(&line, source).await,
        Err(error) => Response::error(format!("cannot read the request: {error}")),
    };
    let mut text = serde_json::to_string(&response).unwrap_or_else(|e| {
        format!("{{\"ok\":false,\"error\":\"cannot encode the answer: {e}\"}}")
    });
    text.push('\n');
    // The client may have gone; nothing to do then.
    let _ = write.write_all(text.as_bytes()).await;
    let _ = write.shutdown().await;
}

async fn answer(line: &[u8], source: &StatusSource) -> Response<TunnelStatus> {
    if line.len() > MAX_REQUEST_LEN {
        return Response::error(format!(
            "request longer than {MAX_REQUEST_LEN} bytes: send one line like {{\"cmd\":\"status\"}}"
        ));
    }
    let request: Request = match serde_json::from_slice(line) {
        Ok(request) => request,
        Err(error) => {
            return Response::error(format!(
                "bad request ({error}): send one JSON line like {{\"cmd\":\"status\"}}"
            ));
        }
    };
    match request.cmd.as_str() {
        "status" => match source.snapshot().await {
            Some(status) => Response {
                ok: true,
                status: Some(status),
                error: None,
            },
            None => Response::error("the tunnel has stopped".into()),
        },
        other => Response::error(format!(
            "unknown command {other:?}: the only command is \"status\""
        )),
    }
}

#[cfg(test)]
mod tests;
