//! `coordinator.toml`: where the coordinator listens, its credentials, the
//! enrolled hospitals and the training plan it runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fed::plan::TrainingPlan;
use protocol::tls::{TlsFiles, TlsMaterial, read_text};
use serde::Deserialize;

use crate::registry::Registry;

/// The file as written by an operator.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Federation name, reported to nodes.
    #[serde(default = "default_federation")]
    pub federation: String,
    /// Address of the gRPC service.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory of the database and artifacts (relative to the file).
    pub data_dir: PathBuf,
    /// Our certificate, key and the federation CA (PEM files).
    pub tls: TlsFiles,
    /// Enrolled hospitals.
    pub hospitals: Vec<HospitalEntry>,
    /// Fingerprints (SHA-256 hex of DER) of revoked certificates.
    #[serde(default)]
    pub revoked_certificates: Vec<String>,
    /// Stop serving once the plan is over.
    #[serde(default)]
    pub exit_when_done: bool,
    /// The plan to run.
    pub plan: TrainingPlan,
    /// Address of the web console's HTTP listener; no console unless set.
    #[serde(default)]
    pub console_listen: Option<SocketAddr>,
    /// Who may log in to the console: a users file (`[[user]]` name, role,
    /// argon2 `password_hash`), relative to this file; needed with `console_listen`.
    #[serde(default)]
    pub console_users: Option<PathBuf>,
    /// Logins through the organisation's OpenID Connect provider (`[console_oidc]`: issuer,
    /// client_id, redirect_url, role_claim, roles, ...), besides the users file.
    pub console_oidc: Option<console::oidc::OidcConfig>,
}

/// An enrolled hospital.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HospitalEntry {
    /// Party name.
    pub name: String,
    /// Its certificate (PEM file).
    pub certificate: PathBuf,
}

/// Everything the coordinator needs to start, resolved and read.
#[derive(Clone, Debug)]
pub struct CoordinatorSettings {
    /// Federation name.
    pub federation: String,
    /// Listen address (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Database and artifact directory.
    pub data_dir: PathBuf,
    /// TLS material.
    pub tls: TlsMaterial,
    /// Known hospitals.
    pub registry: Registry,
    /// The plan.
    pub plan: TrainingPlan,
    /// Stop once the plan is over.
    pub exit_when_done: bool,
    /// The web console, when configured.
    pub console: Option<console::ConsoleSettings>,
}

/// Problems with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error(transparent)]
    Read(#[from] protocol::tls::ReadError),
    /// The TOML is malformed.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The content is invalid.
    #[error("{0}")]
    Invalid(String),
}

fn default_federation() -> String {
    "cohort".into()
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:7443".parse().expect("static address")
}

impl CoordinatorConfig {
    /// Parse a coordinator.toml.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(&read_text(path)?).map_err(|e| ConfigError::Toml {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The web console's settings, when `console_listen` is set.
    fn console(&self, base: &Path) -> Result<Option<console::ConsoleSettings>, ConfigError> {
        let Some(listen) = self.console_listen else {
            return Ok(None);
        };
        let users = self.console_users.as_ref().ok_or_else(|| {
            ConfigError::Invalid(
                "console_listen needs console_users (the console's users file)".into(),
            )
        })?;
        let mut settings = console::ConsoleSettings::from_users_file(listen, &base.join(users))
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        settings.oidc = self.console_oidc.clone();
        Ok(Some(settings))
    }

    /// Read the files it names (relative paths are taken from `base`).
    pub fn resolve(&self, base: &Path) -> Result<CoordinatorSettings, ConfigError> {
        let at = |p: &Path| base.join(p);
        self.plan
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut registry = Registry::default();
        for h in &self.hospitals {
            registry
                .enrol(&h.name, &read_text(&at(&h.certificate))?)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        for f in &self.revoked_certificates {
            registry.revoke(f);
        }
        for h in &self.plan.hospitals {
            if !self.hospitals.iter().any(|e| &e.name == h) {
                return Err(ConfigError::Invalid(format!(
                    "the plan names hospital {h}, which is not enrolled"
                )));
            }
        }
        let console = self.console(base)?;
        Ok(CoordinatorSettings {
            federation: self.federation.clone(),
            listen: self.listen,
            data_dir: at(&self.data_dir),
            tls: self.tls.read(base)?,
            registry,
            plan: self.plan.clone(),
            exit_when_done: self.exit_when_done,
            console,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_configuration_parses_and_its_plan_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/coordinator.toml");
        let config = CoordinatorConfig::load(&path).unwrap();
        config.plan.validate().unwrap();
        assert_eq!(config.hospitals.len(), 4);
    }

    #[test]
    fn the_console_is_off_unless_configured_and_needs_its_users_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/coordinator.toml");
        let mut config = CoordinatorConfig::load(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert!(config.console(dir.path()).unwrap().is_none());
        config.console_listen = Some("127.0.0.1:0".parse().unwrap());
        let err = config.console(dir.path()).unwrap_err().to_string();
        assert!(err.contains("console_users"), "{err}");
        std::fs::write(
            dir.path().join("users.toml"),
            console::Users::one_per_role("pw").to_toml(),
        )
        .unwrap();
        config.console_users = Some("users.toml".into());
        let settings = config.console(dir.path()).unwrap().unwrap();
        assert_eq!(
            settings.users.check("auditor", "pw"),
            Some(console::Role::Auditor)
        );
    }

    #[test]
    fn unknown_keys_are_reported_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "data_dir = \"x\"\nlisten_port = 3\n").unwrap();
        let err = CoordinatorConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("c.toml") && err.contains("listen_port"),
            "{err}"
        );
    }
}
