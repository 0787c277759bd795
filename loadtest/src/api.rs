//! A minimal Kubernetes API client for the harnesses: HTTP/1.1 keep-alive connections over TLS,
//! authenticated with the admin client certificate of an admin kubeconfig (base64
//! `certificate-authority-data`, `client-certificate-data`, `client-key-data`).

use anyhow::{bail, Context, Result};
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// The parts of a kubeconfig the harness reads.
#[derive(Deserialize)]
struct Kubeconfig {
    clusters: Vec<NamedCluster>,
    users: Vec<NamedUser>,
}

#[derive(Deserialize)]
struct NamedCluster {
    cluster: Cluster,
}

#[derive(Deserialize)]
struct NamedUser {
    user: User,
}

#[derive(Deserialize)]
struct Cluster {
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: String,
}

#[derive(Deserialize)]
struct User {
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: String,
    #[serde(rename = "client-key-data")]
    client_key_data: String,
}

/// Where the API server is and how to reach it as the admin.
#[derive(Clone)]
pub struct Api {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Api {
    /// The API server at `addr`, with the CA and admin credentials of the kubeconfig at `path`.
    pub fn from_kubeconfig(addr: SocketAddr, path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Kubeconfig = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing the kubeconfig {}", path.display()))?;
        let cluster = config
            .clusters
            .into_iter()
            .next()
            .context("the kubeconfig has no cluster")?
            .cluster;
        let user = config
            .users
            .into_iter()
            .next()
            .context("the kubeconfig has no user")?
            .user;
        let decode = |field: &str, value: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .with_context(|| format!("{field} is not base64"))
        };
        let ca = decode(
            "certificate-authority-data",
            &cluster.certificate_authority_data,
        )?;
        let cert = decode("client-certificate-data", &user.client_certificate_data)?;
        let key = decode("client-key-data", &user.client_key_data)?;
        let roots = CertificateDer::pem_slice_iter(&ca)
            .collect::<Result<Vec<_>, _>>()
            .context("certificate-authority-data is not PEM certificates")?;
        let certs = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<Vec<_>, _>>()
            .context("client-certificate-data is not PEM certificates")?;
        let key = PrivateKeyDer::from_pem_slice(&key)
            .context("client-key-data is not a PEM private key")?;
        let tls = crate::client_tls(roots, Some((certs, key)))?;
        Ok(Self { addr, tls })
    }

    /// A new keep-alive connection.
    pub async fn connect(&self) -> Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let stream = TlsConnector::from(self.tls.clone())
            .connect(ServerName::try_from("localhost")?, tcp)
            .await
            .with_context(|| format!("TLS handshake with {}", self.addr))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(conn);
        Ok(Conn { sender })
    }
}

/// One HTTP/1.1 keep-alive connection to the API server; requests go one at a time.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Sends a request and returns the response with its body still streaming (for watches).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("accept", "application/json");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        self.sender.ready().await.context("the connection closed")?;
        self.sender
            .send_request(req)
            .await
            .with_context(|| format!("sending {path}"))
    }

    /// Sends a request and reads the whole response.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the response to {path}"))?
            .to_bytes();
        Ok((status, body))
    }

    /// Like [`Conn::call`], but a status other than 2xx is an error showing the body.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes> {
        let (status, body) = self.call(method.clone(), path, body).await?;
        if !status.is_success() {
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }
}
