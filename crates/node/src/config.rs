//! `node.toml`: who the hospital is, where its coordinator is, which code its
//! operator approved, and where its training data comes from.

use std::path::{Path, PathBuf};

use protocol::tls::{TlsFiles, TlsMaterial, read_text};
use serde::Deserialize;

use crate::source::SourceConfig;

/// The file as an operator writes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This hospital's party name (must match its certificate).
    pub name: String,
    /// Coordinator URL, e.g. `https://coordinator.example.org:7443`.
    pub coordinator: String,
    /// Name the coordinator's certificate is checked against.
    #[serde(default = "default_coordinator_name")]
    pub coordinator_name: String,
    /// Directory of the node's database (relative to the file).
    pub data_dir: PathBuf,
    /// Code hashes the operator allows to train on this hospital's data.
    pub approved_code_hashes: Vec<String>,
    /// Stop when the plan is over.
    #[serde(default)]
    pub exit_when_done: bool,
    /// Address of the node's own HTTP API (health, disclosure log, FHIR); none when absent.
    pub listen: Option<std::net::SocketAddr>,
    /// The hospital's EHR database (`sqlite:PATH` or `postgres://...`), served
    /// as FHIR R4 under `/fhir` on the API port and usable as a dataset source.
    pub ehr_db: Option<String>,
    /// Ultrasound ingest: DICOM receiver and DICOMweb (needs `ehr_db`).
    pub imaging: Option<ImagingConfig>,
    /// TLS files.
    pub tls: TlsFiles,
    /// The training data.
    pub dataset: SourceConfig,
    /// Address of the node's web console (needs `ehr_db`); none when absent.
    pub console_listen: Option<std::net::SocketAddr>,
    /// Who may log in to the console: a users file (`[[user]]` name, role, argon2
    /// `password_hash`), relative to this file; needed with `console_listen`.
    pub console_users: Option<PathBuf>,
    /// Logins through the hospital's OpenID Connect provider (`[console_oidc]`: issuer,
    /// client_id, redirect_url, role_claim, roles, ...), besides the users file.
    pub console_oidc: Option<console::oidc::OidcConfig>,
    /// Who approves a plan whose code is on the allow-list: `allow-list` (the list is the
    /// approval) or `dpo` (a person decides in the console; needs `console_listen`).
    #[serde(default)]
    pub review: Review,
    /// Speech-to-text into the record (`[dictation]`: model, language, audio kept; needs
    /// `ehr_db`): `POST /speech/transcripts` on the API port and uploads in the console.
    pub dictation: Option<crate::dictation::DictationConfig>,
    /// The node process's memory budget (`[memory] budget_mib`, 1024 when absent).
    #[serde(default)]
    pub memory: crate::memory::MemoryConfig,
}

/// Who approves plans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Review {
    /// A plan running allowed code on a dataset the node serves is approved.
    #[default]
    AllowList,
    /// Such a plan waits in the console for the data protection officer, until the plan's
    /// review deadline (no decision: declined).
    Dpo,
}

/// The `[imaging]` table of node.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagingConfig {
    /// Directory of the image store (relative to the file).
    pub dir: PathBuf,
    /// Address of the DICOM receiver (C-STORE, C-ECHO).
    pub dicom_listen: Option<std::net::SocketAddr>,
    /// The receiver's AE title.
    #[serde(default = "default_ae_title")]
    pub ae_title: String,
}

fn default_ae_title() -> String {
    "COHORT".into()
}

fn default_coordinator_name() -> String {
    "coordinator".into()
}

/// Everything a node needs to run, read and resolved.
pub struct NodeSettings {
    /// Party name.
    pub name: String,
    /// Coordinator URL.
    pub coordinator: String,
    /// TLS name of the coordinator.
    pub coordinator_name: String,
    /// Database directory.
    pub data_dir: PathBuf,
    /// Allowed code hashes.
    pub approved_code_hashes: Vec<String>,
    /// Stop when the plan is over.
    pub exit_when_done: bool,
    /// Address of the node's HTTP API.
    pub listen: Option<std::net::SocketAddr>,
    /// TLS material.
    pub tls: TlsMaterial,
    /// The data source.
    pub source: Box<dyn crate::source::DatasetSource>,
    /// The hospital's FHIR store, served under `/fhir` on the node's API port.
    pub ehr: Option<ehr::Store>,
    /// Ultrasound ingest (needs the EHR).
    pub imaging: Option<crate::imaging::ImagingSettings>,
    /// The node's web console (needs the EHR), when configured.
    pub console: Option<console::ConsoleSettings>,
    /// Who approves plans.
    pub review: Review,
    /// Dictation (needs the EHR), when configured.
    pub dictation: Option<crate::dictation::DictationSettings>,
    /// The memory budget's shares, enforced on the node's requests; `None` for nodes that share
    /// their process with others (in-process federations), which no process-wide budget fits.
    pub memory: Option<crate::memory::MemoryPlan>,
    /// The node's secret (DP noise seeds), installed on first start when the
    /// node has none yet: only for simulations that must be reproducible
    /// (`cohort demo`); a real node draws its own at random (`None`).
    pub secret: Option<[u8; 32]>,
}

/// Problems with node.toml.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error(transparent)]
    Read(#[from] protocol::tls::ReadError),
    /// Bad TOML.
    #[error("{path}: {message}")]
    Toml {
        /// File.
        path: String,
        /// Parser message.
        message: String,
    },
    /// The data source is unusable.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// The EHR database could not be opened.
    #[error("EHR database {0}")]
    Ehr(String),
    /// Settings that do not go together, or a file they name that is not valid.
    #[error("node.toml: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Parse a node.toml.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(&read_text(path)?).map_err(|e| ConfigError::Toml {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Read the files it names (relative to `base`).
    pub async fn resolve(&self, base: &Path) -> Result<NodeSettings, ConfigError> {
        let at = |p: &Path| base.join(p);
        let memory = self.memory.plan().map_err(ConfigError::Invalid)?;
        let ehr = match &self.ehr_db {
            None => None,
            Some(url) => Some(
                ehr::Store::open_with(url, memory.ehr_caches)
                    .await
                    .map_err(|e| ConfigError::Ehr(format!("{url}: {e}")))?,
            ),
        };
        Ok(NodeSettings {
            name: self.name.clone(),
            coordinator: self.coordinator.clone(),
            coordinator_name: self.coordinator_name.clone(),
            data_dir: at(&self.data_dir),
            approved_code_hashes: self.approved_code_hashes.clone(),
            exit_when_done: self.exit_when_done,
            listen: self.listen,
            tls: self.tls.read(base)?,
            source: self
                .dataset
                .build(base, ehr.as_ref(), &at(&self.data_dir))?,
            ehr,
            imaging: self
                .imaging
                .as_ref()
                .map(|i| crate::imaging::ImagingSettings {
                    dir: at(&i.dir),
                    dicom_listen: i.dicom_listen,
                    ae_title: i.ae_title.clone(),
                }),
            console: self.console(base)?,
            review: self.review,
            dictation: self.dictation(base)?,
            memory: Some(memory),
            secret: None,
        })
    }

    /// Dictation settings, when `[dictation]` is there: needs the EHR and an installed model.
    fn dictation(
        &self,
        base: &Path,
    ) -> Result<Option<crate::dictation::DictationSettings>, ConfigError> {
        let Some(config) = &self.dictation else {
            return Ok(None);
        };
        if self.ehr_db.is_none() {
            return Err(ConfigError::Invalid(
                "[dictation] needs ehr_db (transcripts are filed in the EHR)".into(),
            ));
        }
        let mut config = config.clone();
        config.models_dir = config.models_dir.map(|d| base.join(d));
        config.resolve().map(Some).map_err(ConfigError::Invalid)
    }

    /// The console's settings, when `console_listen` is set.
    fn console(&self, base: &Path) -> Result<Option<console::ConsoleSettings>, ConfigError> {
        let Some(listen) = self.console_listen else {
            if self.review == Review::Dpo {
                return Err(ConfigError::Invalid(
                    "review = \"dpo\" needs console_listen (the DPO decides in the console)".into(),
                ));
            }
            return Ok(None);
        };
        if self.ehr_db.is_none() {
            return Err(ConfigError::Invalid("console_listen needs ehr_db".into()));
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_configuration_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node.toml");
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.name, "cleveland");
        assert!(matches!(config.dataset, SourceConfig::EhrHeartDisease));
        assert!(config.ehr_db.is_some() && config.imaging.is_some());
    }

    #[test]
    fn text_sources_name_their_language_english_by_default() {
        let parse = |table: &str| -> SourceConfig { toml::from_str(table).unwrap() };
        assert!(matches!(
            parse("kind = \"ehr-coded-notes\""),
            SourceConfig::EhrCodedNotes { lang } if lang == "en"
        ));
        assert!(matches!(
            parse("kind = \"ehr-tagger-notes\"\nlang = \"fr\""),
            SourceConfig::EhrTaggerNotes { lang } if lang == "fr"
        ));
        let bad: Result<SourceConfig, _> =
            toml::from_str("kind = \"ehr-coded-notes\"\nlanguage = \"fr\"");
        assert!(bad.unwrap_err().to_string().contains("unknown field"));
        let dir = tempfile::tempdir().unwrap();
        let store = tokio::runtime::Runtime::new().unwrap().block_on(async {
            ehr::Store::open(&format!(
                "sqlite:{}",
                dir.path().join("ehr.sqlite").display()
            ))
            .await
            .unwrap()
        });
        let klingon = parse("kind = \"ehr-coded-notes\"\nlang = \"tlh\"");
        let err = klingon
            .build(dir.path(), Some(&store), dir.path())
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown language"), "{err}");
    }

    #[test]
    fn dictation_needs_the_ehr_and_an_installed_model() {
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node.toml");
        let text = std::fs::read_to_string(&example)
            .unwrap()
            .replace("# [dictation]", "[dictation]")
            .replace("# model = ", "model = ")
            .replace("# language = ", "language = ")
            .replace("# audio = ", "audio = ")
            .replace("# max_mib = ", "max_mib = ")
            + "models_dir = \"no-models-here\"\n";
        let path = dir.path().join("node.toml");
        std::fs::write(&path, &text).unwrap();
        let config = NodeConfig::load(&path).unwrap();
        let dictation = config.dictation.as_ref().unwrap();
        assert_eq!(
            (dictation.model.as_str(), dictation.max_mib),
            ("whisper-tiny.en", 64)
        );
        let err = config.dictation(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cohort models install whisper-tiny.en"),
            "{err}"
        );
        let mut without_ehr = config.clone();
        without_ehr.ehr_db = None;
        let err = without_ehr.dictation(dir.path()).unwrap_err().to_string();
        assert!(err.contains("needs ehr_db"), "{err}");
    }

    #[tokio::test]
    async fn a_console_with_dpo_review_and_the_hospitals_identity_provider() {
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node.toml");
        let mut text = std::fs::read_to_string(&example).unwrap();
        let head = text.find("[imaging]").unwrap();
        text.insert_str(
            head,
            "console_listen = \"127.0.0.1:0\"\nconsole_users = \"users.toml\"\nreview = \"dpo\"\n\
             ehr_db_unused = 0\n",
        );
        // Unknown fields are refused, with the file and the field named.
        let path = dir.path().join("node.toml");
        std::fs::write(&path, &text).unwrap();
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("ehr_db_unused"), "{err}");
        let text = text.replace("ehr_db_unused = 0\n", "")
            + "\n[console_oidc]\nissuer = \"https://idp.hospital.example\"\nclient_id = \"cohort\"\n\
               redirect_url = \"https://node.hospital.example/login/oidc/callback\"\n\
               role_claim = \"groups\"\nroles = { dpo-team = \"dpo\" }\n";
        std::fs::write(&path, &text).unwrap();
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.review, Review::Dpo);
        let oidc = config.console_oidc.as_ref().unwrap();
        assert_eq!(oidc.roles["dpo-team"], console::Role::Dpo);
        // The users file is needed and read.
        let err = config.console(dir.path()).unwrap_err().to_string();
        assert!(err.contains("users.toml"), "{err}");
    }
}
