//! `kgate rbac who-can` and `kgate rbac explain`: RBAC questions answered offline, with the
//! gateway's own authorizer ([`kgate_authz::RbacAuthorizer`]) fed the objects of a cluster or of
//! files, so the answers are the gateway's answers.
//!
//! It owns reading the question ([`request`]: VERB RESOURCE [NAME] as `kubectl auth can-i`
//! reads them, and the user with kube-apiserver's implicit groups), the two sources of objects
//! (a cluster through a kubeconfig, [`kubeconfig`] + [`remote`]; or YAML/JSON files, [`files`]),
//! and what is printed ([`report`]). It depends on kgate-authz for every decision and on
//! kgate-core for the request vocabulary; the clap options are in [`crate::args`].
//!
//! What it does not model: authorizers other than `system:masters`, RBAC and (for `explain`,
//! with `--authorization-policy-file`) kgate's policy layer; and who is in a group (groups are
//! listed as groups).

pub mod files;
pub mod kubeconfig;
pub mod remote;
pub mod report;
pub mod request;

use crate::args::{RbacCommand, RbacOptions, RbacSourceArgs};
use kgate_authz::{PrivilegedGroups, RbacAuthorizer, RbacError};
use kgate_core::UserInfo;
use kubeconfig::KubeconfigReadError;
use remote::RemoteError;
use std::io::Write;
use std::path::PathBuf;
use thiserror::Error;

/// The four kinds, roles before the bindings that name them: (list path segment, kind).
const KINDS: [(&str, &str); 4] = [
    ("clusterroles", "ClusterRole"),
    ("roles", "Role"),
    ("clusterrolebindings", "ClusterRoleBinding"),
    ("rolebindings", "RoleBinding"),
];

/// Why a question could not be answered (exit code 2).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RbacCliError {
    /// An argument or flag is malformed.
    #[error("{what}: {reason}")]
    Argument { what: &'static str, reason: String },
    /// A `--from` file or folder cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A document of a `--from` file is not valid YAML/JSON, or not an object.
    #[error("{location}: invalid document")]
    Parse {
        /// `file: document N[, item M]`.
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Role, ClusterRole or binding in a `--from` file that RBAC refuses.
    #[error("{location}: invalid RBAC object")]
    Object {
        location: String,
        #[source]
        source: RbacError,
    },
    /// `--from` holds no RBAC object: most likely the wrong path.
    #[error(
        "no Role, ClusterRole, RoleBinding or ClusterRoleBinding in {} ({files} files read)",
        path.display()
    )]
    NoObjects { path: PathBuf, files: usize },
    /// The kubeconfig cannot be found, read or used.
    #[error("cannot use the kubeconfig")]
    Kubeconfig(#[from] KubeconfigReadError),
    /// The cluster could not be listed.
    #[error("cannot list the RBAC objects of the cluster of context {context:?}")]
    Remote {
        context: String,
        #[source]
        source: RemoteError,
    },
    /// Writing the answer failed.
    #[error("cannot write the answer")]
    Output(#[source] std::io::Error),
}

/// How a question ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `who-can` printed its table.
    Listed,
    /// `explain`: the request is allowed.
    Allowed,
    /// `explain`: the request is denied.
    Denied,
}

impl Outcome {
    /// 0, except 1 for a denied request, as `kubectl auth can-i`. (Errors are 2.)
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Listed | Self::Allowed => 0,
            Self::Denied => 1,
        }
    }
}

/// Answers the question in `options`: the answer to `out`, warnings and a line on what was
/// loaded to `err`.
pub async fn run(
    options: RbacOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, RbacCliError> {
    match options.command {
        RbacCommand::WhoCan(args) => {
            // Arguments first: a typo is reported before any network or file access.
            let spec = args.request.validate()?;
            let authorizer = load(&args.source, err).await?;
            // who_can ignores the user: it asks about every subject.
            let grants = authorizer.who_can(&spec.attributes(UserInfo::default()));
            write(out, &report::who_can(&spec.describe(), &grants))?;
            Ok(Outcome::Listed)
        }
        RbacCommand::Explain(args) => {
            let spec = args.request.validate()?;
            let user = request::user_info(&args.user, &args.groups, !args.no_authenticated_group)?;
            let authorizer = load(&args.source, err).await?;
            let attributes = spec.attributes(user);
            // kube-apiserver asks the privileged-group authorizer before RBAC, as kgate does.
            let privileged = PrivilegedGroups::default().includes(&attributes.user);
            let explanation = authorizer.explain(&attributes);
            let mut verdict = report::Verdict::of(&explanation, privileged);
            if let Some(path) = &args.authorization_policy_file {
                let policy = read_policy(path)?;
                verdict = verdict.with_policy(
                    &policy.deny_decision(&attributes),
                    &policy.allow_decision(&attributes),
                );
            }
            write(out, &report::explain(&explanation, &verdict))?;
            Ok(if verdict.is_allowed() {
                Outcome::Allowed
            } else {
                Outcome::Denied
            })
        }
    }
}

fn read_policy(path: &std::path::Path) -> Result<kgate_authz::Policy, RbacCliError> {
    let text = std::fs::read_to_string(path).map_err(|source| RbacCliError::Read {
        path: path.to_owned(),
        source,
    })?;
    kgate_authz::Policy::parse(path.display().to_string(), &text).map_err(|source| {
        RbacCliError::Parse {
            location: path.display().to_string(),
            source: Box::new(source),
        }
    })
}

fn write(out: &mut dyn Write, text: &str) -> Result<(), RbacCliError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(RbacCliError::Output)
}

/// An authorizer holding the objects of `source`.
pub async fn load(
    source: &RbacSourceArgs,
    err: &mut dyn Write,
) -> Result<RbacAuthorizer, RbacCliError> {
    // Notes on stderr are best effort: failing to print one is no reason to fail the answer.
    if let Some(root) = &source.from {
        let mut warnings = Vec::new();
        let (authorizer, summary) =
            files::load(root, source.with_bootstrap, &mut |w| warnings.push(w))?;
        for warning in warnings {
            let _ = writeln!(err, "warning: {warning}");
        }
        let _ = writeln!(
            err,
            "read {} from {} under {}{}{}",
            plural(summary.objects, "RBAC object"),
            plural(summary.files, "file"),
            root.display(),
            if summary.ignored > 0 {
                format!(" ({} ignored)", plural(summary.ignored, "other object"))
            } else {
                String::new()
            },
            if source.with_bootstrap {
                ", with the bootstrap policy"
            } else {
                ""
            },
        );
        return Ok(authorizer);
    }
    let paths = kubeconfig::locate(source.kubeconfig.as_deref())?;
    let access = kubeconfig::load(&paths, source.context.as_deref())?;
    let authorizer = RbacAuthorizer::new();
    let mut total = 0;
    for (plural, kind) in KINDS {
        let items = remote::list(&access, plural, kind)
            .await
            .map_err(|source| RbacCliError::Remote {
                context: access.context.clone(),
                source,
            })?;
        total += items.len();
        // The gateway skips objects RBAC refuses, and so do we, saying which.
        if let Err(RbacError::Skipped { errors, .. }) = authorizer.replace_kind(kind, &items) {
            for error in errors {
                let _ = writeln!(err, "warning: a {kind} was skipped: {error}");
            }
        }
    }
    let _ = writeln!(
        err,
        "listed {} from {} (context {:?})",
        plural(total, "RBAC object"),
        access.server,
        access.context
    );
    Ok(authorizer)
}

/// `1 file`, `2 files`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
#[path = "rbac_cli_tests.rs"]
mod tests;
