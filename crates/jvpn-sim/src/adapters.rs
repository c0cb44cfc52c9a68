//! Adapters from the jvpn session core to the [`Node`](crate::Node) trait (coming with the session API).
