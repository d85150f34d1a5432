//! Issuing, checking, listing and revoking bearer tokens.

use base64::Engine;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::scopes::{Principal, parse_scopes};
use crate::datetime;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::types;

/// Prefix of every token, so leaked tokens are easy to recognise and scan for.
const PREFIX: &str = "cohort_ehr_";

/// A token as listed (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSummary {
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: String,
    /// Its patient, for `patient/` scopes.
    pub patient: Option<String>,
    /// When it expires (microseconds since the epoch).
    pub expires: Option<i64>,
    /// True once revoked.
    pub revoked: bool,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Issues a token named `name` with `scopes`; returns the token, which is not stored and
    /// cannot be shown again. `patient` is required by `patient/` scopes.
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &str,
        patient: Option<&str>,
        expires: Option<i64>,
    ) -> Result<String> {
        let parsed = parse_scopes(scopes)?;
        if parsed.is_empty() {
            return Err(Error::invalid(format!(
                "{scopes:?} grants no resource scope"
            )));
        }
        let needs_patient = parsed.iter().any(|s| s.context == super::Context::Patient);
        if needs_patient && patient.is_none() {
            return Err(Error::invalid("patient/ scopes need the token's patient"));
        }
        if let Some(p) = patient
            && !types::is_valid_id(p)
        {
            return Err(Error::invalid(format!("{p:?} is not a patient id")));
        }
        let taken = sqlx::query("SELECT name FROM auth_tokens WHERE name = $1 AND NOT revoked")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        if taken.is_some() {
            return Err(Error::Conflict(format!(
                "a live token is already named {name:?}"
            )));
        }
        let secret: [u8; 32] = rand::random();
        let token = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        sqlx::query(
            "INSERT INTO auth_tokens (token_hash, name, scopes, patient, created, expires, revoked) \
             VALUES ($1, $2, $3, $4, $5, $6, FALSE)",
        )
        .bind(hash(&token))
        .bind(name)
        .bind(scopes)
        .bind(patient)
        .bind(datetime::now_micros())
        .bind(expires)
        .execute(self.pool())
        .await?;
        Ok(token)
    }

    /// The principal a bearer token stands for, or why it is refused.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let row = sqlx::query(
            "SELECT name, scopes, patient, expires, CASE WHEN revoked THEN 1 ELSE 0 END AS revoked \
             FROM auth_tokens WHERE token_hash = $1",
        )
        .bind(hash(token))
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| {
            Error::Unauthorized("the bearer token is not known to this server".into())
        })?;
        let name: String = row.try_get("name")?;
        if row.try_get::<i64, _>("revoked")? != 0 {
            return Err(Error::Unauthorized(format!(
                "token {name:?} has been revoked"
            )));
        }
        let expires: Option<i64> = row.try_get("expires")?;
        if expires.is_some_and(|e| e <= datetime::now_micros()) {
            return Err(Error::Unauthorized(format!("token {name:?} has expired")));
        }
        let scopes: String = row.try_get("scopes")?;
        Ok(Principal {
            name,
            scopes: parse_scopes(&scopes)?,
            patient: row.try_get("patient")?,
        })
    }

    /// Revokes the live token named `name`; false if there is none.
    pub async fn revoke_token(&self, name: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE auth_tokens SET revoked = TRUE WHERE name = $1 AND NOT revoked")
                .bind(name)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// All tokens, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenSummary>> {
        let rows = sqlx::query(
            "SELECT name, scopes, patient, expires, CASE WHEN revoked THEN 1 ELSE 0 END AS revoked \
             FROM auth_tokens ORDER BY created",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenSummary {
                    name: r.try_get("name")?,
                    scopes: r.try_get("scopes")?,
                    patient: r.try_get("patient")?,
                    expires: r.try_get("expires")?,
                    revoked: r.try_get::<i64, _>("revoked")? != 0,
                })
            })
            .collect()
    }
}
