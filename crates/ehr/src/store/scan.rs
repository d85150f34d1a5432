//! Reads of many resources at once: a patient's whole record (`$everything`) and the
//! type-by-type scans of bulk export.

use super::read::{version_columns_for, version_from_row};
use super::sql::Sql;
use super::{Store, Version};
use crate::error::Result;

/// Types left out of `$everything` and patient-level export: the access log is not part of the
/// clinical record.
const NOT_CLINICAL: &[&str] = &["AuditEvent"];

impl Store {
    /// The patient, every live resource in their compartment, and the resources those reference
    /// (practitioners, organizations, …), in write order. `types` limits the result types;
    /// `since` keeps resources written at or after it.
    pub async fn everything(
        &self,
        patient_id: &str,
        types: Option<&[String]>,
        since: Option<i64>,
    ) -> Result<Vec<Version>> {
        self.read("Patient", patient_id).await?;
        let columns = version_columns_for(self.dialect());
        let mut sql = Sql::default();
        let p = sql.arg(patient_id);
        let mut filters = String::new();
        for excluded in NOT_CLINICAL {
            filters.push_str(&format!(" AND r.res_type <> {}", sql.arg(*excluded)));
        }
        if let Some(types) = types {
            let list: Vec<String> = types.iter().map(|t| sql.arg(t.as_str())).collect();
            filters.push_str(&format!(" AND r.res_type IN ({})", list.join(", ")));
        }
        if let Some(since) = since {
            filters.push_str(&format!(" AND r.last_updated >= {}", sql.arg(since)));
        }
        sql.text = format!(
            "SELECT {columns} FROM resources r WHERE r.current AND NOT r.deleted {filters} AND (
                r.seq IN (SELECT c.seq FROM idx_compartment c WHERE c.patient_id = {p})
                OR r.seq IN (SELECT t.seq FROM idx_compartment c JOIN (
                        SELECT seq, target_type, target_id FROM idx_link
                        UNION ALL SELECT seq, target_type, target_id FROM idx_reference
                    ) l ON l.seq = c.seq
                    JOIN resources t ON t.res_type = l.target_type AND t.res_id = l.target_id AND t.current
                    WHERE c.patient_id = {p})
             ) ORDER BY r.seq"
        );
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Up to `limit` live resources of `resource_type` written after sequence number `after`,
    /// in write order: the cursor of bulk export. With `patient_data_only`, only resources in
    /// some patient's compartment.
    pub async fn scan(
        &self,
        resource_type: &str,
        after: i64,
        since: Option<i64>,
        patient_data_only: bool,
        limit: usize,
    ) -> Result<Vec<Version>> {
        let mut sql = Sql::default();
        let t = sql.arg(resource_type);
        let a = sql.arg(after);
        let mut filters = String::new();
        if let Some(since) = since {
            filters.push_str(&format!(" AND r.last_updated >= {}", sql.arg(since)));
        }
        if patient_data_only {
            filters.push_str(
                " AND r.seq IN (SELECT c.seq FROM idx_compartment c WHERE c.seq = r.seq)",
            );
        }
        let l = sql.arg(i64::try_from(limit).unwrap_or(i64::MAX));
        sql.text = format!(
            "SELECT {} FROM resources r WHERE r.res_type = {t} AND r.current AND NOT r.deleted \
             AND r.seq > {a}{filters} ORDER BY r.seq LIMIT {l}",
            version_columns_for(self.dialect())
        );
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Every live Patient, in the order they were first registered (their first version).
    pub async fn patients_in_registration_order(&self) -> Result<Vec<Version>> {
        let sql = format!(
            "SELECT {} FROM resources r JOIN (SELECT res_id, MIN(seq) AS first FROM resources \
             WHERE res_type = 'Patient' GROUP BY res_id) f ON f.res_id = r.res_id \
             WHERE r.res_type = 'Patient' AND r.current AND NOT r.deleted ORDER BY f.first",
            version_columns_for(self.dialect())
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// The number of live resources of each type, sorted by type.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT res_type, COUNT(*) AS n FROM resources WHERE current AND NOT deleted GROUP BY res_type ORDER BY res_type",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    sqlx::Row::try_get(r, "res_type")?,
                    sqlx::Row::try_get(r, "n")?,
                ))
            })
            .collect()
    }
}
