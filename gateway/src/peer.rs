//! What the TLS listener learned about the connection, handed to the pipeline as request
//! extensions.

use std::net::SocketAddr;
use std::sync::Arc;

/// The client certificate chain the peer presented (leaf first, DER), possibly empty. The TLS
/// layer has checked that the peer holds the leaf's key; whether the chain is trusted is the X.509
/// authenticator's question, so that a bad certificate is a 401 Status rather than a failed
/// handshake that kubectl reports poorly.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates(pub Arc<Vec<Vec<u8>>>);

/// The peer's address.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);
