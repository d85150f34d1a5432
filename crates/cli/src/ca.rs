//! `cohort ca`: create the federation's certificate authority and issue each
//! party's certificate and Ed25519 identity.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

/// Certificate authority commands.
#[derive(Subcommand)]
pub enum CaCommand {
    /// Create a new CA (ca.crt, ca.key) in DIR.
    Init {
        /// Directory for the CA files.
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// Federation name written into the CA certificate.
        #[arg(long, default_value = "cohort")]
        federation: String,
    },
    /// Issue certificates and identities (NAME.crt, NAME.key) signed by the CA in DIR.
    Issue {
        /// Directory holding ca.crt and ca.key; credentials are written here.
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// Party names (lower-case letters, digits and '-'), e.g. coordinator cleveland.
        #[arg(required = true)]
        parties: Vec<String>,
    },
}

/// Run a CA command.
pub fn run(command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Init { dir, federation } => {
            let ca = pki::CertificateAuthority::generate(&federation)?;
            ca.save(&dir)
                .with_context(|| format!("writing the CA into {}", dir.display()))?;
            println!(
                "created CA for federation {federation} in {}",
                dir.display()
            );
        }
        CaCommand::Issue { dir, parties } => {
            let ca = pki::CertificateAuthority::load(&dir).with_context(|| {
                format!(
                    "loading the CA from {} (run `cohort ca init` first)",
                    dir.display()
                )
            })?;
            for party in parties {
                let creds = ca.issue(&party)?;
                creds.save(&dir)?;
                println!(
                    "{party}: {}/{party}.crt  fingerprint {}  identity {}",
                    dir.display(),
                    creds.cert_fingerprint()?,
                    creds.identity()?.public_key().to_hex()
                );
            }
        }
    }
    Ok(())
}
