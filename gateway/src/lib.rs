//! kgate-gateway: the `kgate` binary's library: CLI, config, PKI, the TLS listener, the request
//! pipeline (`chain::build`) and the upstream proxy.
