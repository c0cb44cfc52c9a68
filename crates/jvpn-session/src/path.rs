//! Opaque path names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An opaque name for one path (a transport link plus a remote), chosen by the runtime shell.
///
/// The core never sees an address: it only compares `PathId`s and tells the shell which one
/// a datagram must leave on.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PathId(pub u32);

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path#{}", self.0)
    }
}
