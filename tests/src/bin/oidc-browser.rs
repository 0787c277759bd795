//! `oidc-browser URL`: a stand-in for a person's browser, for `kgate login` runs under test
//! (set it as the browser command kgate opens).
//!
//! With an authorization URL: signs in on the test OpenID provider's login page as
//! `$OIDC_BROWSER_USER` / `$OIDC_BROWSER_PASSWORD` (trusting `$OIDC_BROWSER_CACERT`), follows
//! the redirects, then GETs the final loopback redirect, which delivers the code to the waiting
//! `kgate login`. With a device-flow verification URL (`.../device`, with or without
//! `?user_code=`; else `$OIDC_BROWSER_USER_CODE`): enters the code, confirms, signs in and ends
//! on the provider's success page.
//!
//! Exit 0 on success; non-zero with a message on stderr otherwise (no secrets printed).

use kgate_e2e::oidc::{browse, deliver, BrowserOutcome};
use std::path::PathBuf;
use std::process::ExitCode;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("${name} is not set"))
}

fn run() -> Result<String, String> {
    let mut args = std::env::args().skip(1);
    let url = match (args.next(), args.next()) {
        (Some(url), None) => url,
        _ => return Err("usage: oidc-browser URL".to_owned()),
    };
    let user = env("OIDC_BROWSER_USER")?;
    let password = env("OIDC_BROWSER_PASSWORD")?;
    let ca = PathBuf::from(env("OIDC_BROWSER_CACERT")?);
    let user_code = std::env::var("OIDC_BROWSER_USER_CODE").ok();
    match browse(&ca, &url, &user, &password, user_code.as_deref())? {
        BrowserOutcome::Redirect(redirect) => {
            // Only the part before the query: it carries the code.
            let shown = redirect.split('?').next().unwrap_or_default().to_owned();
            let run = deliver(&redirect);
            if !run.success() {
                return Err(format!(
                    "delivering the redirect to {shown} failed: {}",
                    run.stderr.trim()
                ));
            }
            let status = run
                .stdout
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0);
            if !(200..400).contains(&status) {
                return Err(format!("{shown} answered {status}:\n{}", run.stdout));
            }
            Ok(format!("signed in as {user}; {shown} answered {status}"))
        }
        BrowserOutcome::Page { url, .. } => {
            if url.contains("/device") {
                Ok(format!("signed in as {user}; device confirmed ({url})"))
            } else {
                Err(format!(
                    "ended on {url}, neither a redirect nor the device flow's success page"
                ))
            }
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(message) => {
            eprintln!("oidc-browser: {message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("oidc-browser: {message}");
            ExitCode::FAILURE
        }
    }
}
