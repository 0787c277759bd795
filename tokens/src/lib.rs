//! kgate-tokens: bearer tokens. It owns how a bearer credential is read off a request and, in later
//! work, the ServiceAccount token issuer and the verifiers for ServiceAccount and OIDC tokens.
