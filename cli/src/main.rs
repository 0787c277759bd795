//! The `kgate` binary: parses the command line, starts the chosen part, and waits for Ctrl-C or
//! SIGTERM. CLI glue only; everything it runs lives in the library.

use anyhow::Context as _;
use clap::Parser as _;
use kgate_cli::args::{Cli, Command, KeysCommand, KubeconfigCommand, KubeconfigOptions};
use kgate_cli::login;
use kgate_cli::node_cli;
use kgate_cli::nodes_cli;
use kgate_cli::rbac_cli;
use kgate_cli::up::{self, Running};
use std::time::Duration;

// The API server and its in-process clients allocate per request and per watch event (JSON
// objects); glibc's allocator took a fifth of the cluster benchmark's CPU, mimalloc less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .with_context(|| format!("invalid --log filter {:?}", cli.log))?,
        )
        .with_writer(std::io::stderr)
        .init();

    match cli.command {
        Command::Up(options) => {
            let config = options.validate()?;
            let running = up::start_up(config)
                .await
                .context("kgate up failed to start")?;
            announce(&running);
            run_until_signal(running).await
        }
        Command::Gateway(options) => {
            let config = options.validate()?;
            let running = up::start_gateway(config)
                .await
                .context("kgate gateway failed to start")?;
            announce(&running);
            run_until_signal(running).await
        }
        Command::Controlplane(options) => {
            let config = options.validate()?;
            let running = up::start_controlplane(config)
                .await
                .context("kgate controlplane failed to start")?;
            println!(
                "kgate control plane is ready on https://{}",
                running.local_addr()
            );
            run_until_signal(running).await
        }
        Command::Kubeconfig(KubeconfigOptions {
            command: Some(KubeconfigCommand::Oidc(options)),
            ..
        }) => {
            let config = options.validate()?;
            login::write_oidc_kubeconfig(&config, &mut std::io::stdout())
                .context("cannot write the kubeconfig")?;
            Ok(())
        }
        Command::Login(options) => {
            let config = options.validate()?;
            let exec_info =
                login::ExecInfo::from_env().context("cannot read KUBERNETES_EXEC_INFO")?;
            let credential = login::login(&config, &exec_info)
                .await
                .context("kgate login failed")?;
            println!("{}", credential.to_json());
            Ok(())
        }
        Command::Kubeconfig(options) => {
            let config = options.validate()?;
            let text = up::issue_kubeconfig(&config).context("cannot issue the kubeconfig")?;
            print!("{text}");
            Ok(())
        }
        Command::Keys(options) => match options.command {
            KeysCommand::Rotate {
                data_dir,
                algorithm,
            } => {
                let algorithm: kgate_tokens::Algorithm = algorithm
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--algorithm: {e}"))?;
                let kid =
                    up::rotate_keys(&data_dir, algorithm).context("cannot rotate the keys")?;
                println!("new signing key {kid}");
                Ok(())
            }
            KeysCommand::Prune { data_dir, keep } => {
                let removed = up::prune_keys(&data_dir, keep).context("cannot prune the keys")?;
                for kid in removed {
                    println!("removed key {kid}");
                }
                Ok(())
            }
        },
        Command::Webhook(options) => match options.command {
            Some(kgate_cli::webhook_cli::WebhookCommand::Config(args)) => {
                let flags = kgate_cli::webhook_cli::write_config(&args)
                    .context("cannot write the webhook configuration")?;
                println!("wrote the webhook configuration to {}", args.out.display());
                println!("add to kube-apiserver (and drop --authorization-mode):");
                print!("{flags}");
                Ok(())
            }
            None => {
                let settings = options.serve.validate()?;
                let running = up::start_webhook(settings)
                    .await
                    .context("kgate webhook failed to start")?;
                println!(
                    "kgate webhook listening on https://{}",
                    running.local_addr()
                );
                run_until_signal(running).await
            }
        },
        Command::Token(options) => {
            kgate_cli::webhook_cli::run_token(
                options,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )
            .context("kgate token failed")?;
            Ok(())
        }
        Command::Node(options) => {
            // Errors are one line for the terminal; exit 1.
            if let Err(error) = node_cli::run(options, &mut std::io::stdout()).await {
                eprintln!("error: {error}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Nodes(options) => {
            let count = options.count;
            let agents = nodes_cli::start(options)
                .await
                .context("kgate nodes failed to start")?;
            println!("kgate nodes: {count} simulated nodes running");
            shutdown_signal().await?;
            agents.abort();
            Ok(())
        }
        Command::Rbac(options) => {
            // Exit codes as `kubectl auth can-i`: 0 allowed (or listed), 1 denied, 2 an error.
            let code = match rbac_cli::run(options, &mut std::io::stdout(), &mut std::io::stderr())
                .await
            {
                Ok(outcome) => outcome.exit_code(),
                Err(error) => {
                    eprintln!("error: {:#}", anyhow::Error::from(error));
                    2
                }
            };
            std::io::Write::flush(&mut std::io::stdout()).ok();
            std::process::exit(code)
        }
    }
}

/// Prints where the kubeconfig is and, once every readiness check passed, the ready line that
/// scripts and tests wait for.
fn announce(running: &Running) {
    if let Some(path) = running.kubeconfig_path() {
        println!("kubeconfig: {}", path.display());
        println!("try: kubectl --kubeconfig {} get nodes", path.display());
    }
}

async fn run_until_signal(running: Running) -> anyhow::Result<()> {
    let addr = running.local_addr();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    tokio::select! {
        ready = running.wait_ready(Duration::from_secs(600)) => {
            if ready {
                println!("kgate is ready on https://{addr}");
            } else {
                tracing::warn!(missing = ?running.readiness().missing(), "not ready after 10 minutes");
            }
        }
        result = &mut signal => {
            result?;
            running.shutdown().await;
            return Ok(());
        }
    }
    signal.await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
