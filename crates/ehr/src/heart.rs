//! UCI Heart Disease (FLamby's Fed-Heart-Disease) in the EHR: load a centre's files as FHIR,
//! and build its training table back through the gate, equal to
//! [`learn::heart::load_centre`]'s.

pub mod convert;

use crate::datetime;
use crate::error::{Error, Result};
use crate::gate::{self, DatasetDefinition, GatedDataset, PseudonymKey};
use crate::store::Store;

/// The dataset definition reproducing `learn::heart`'s 13 features and label from the FHIR
/// resources [`convert`] writes.
pub fn definition() -> Result<DatasetDefinition> {
    DatasetDefinition::from_json(include_str!("../definitions/fed-heart-disease.json"))
}

/// Loads `centre`'s records (the text of `processed.<centre>.data` and of `flamby-split.csv`)
/// into `store` in one transaction; returns the number of resources written.
pub async fn load_centre(
    store: &Store,
    centre: &str,
    data_file: &str,
    split_csv: &str,
) -> Result<usize> {
    let mut bundle = convert::centre_bundle(centre, data_file, split_csv)?;
    let mut tx = store.begin().await?;
    let outcomes = crate::bundle::transaction(&mut tx, &mut bundle).await?;
    tx.commit().await?;
    Ok(outcomes.len())
}

/// Reads `dir/processed.<centre>.data` and `dir/flamby-split.csv` and loads them.
pub async fn load_centre_files(
    store: &Store,
    centre: &str,
    dir: &std::path::Path,
) -> Result<usize> {
    let read = |name: String| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let data = read(format!("processed.{centre}.data"))?;
    let split = read("flamby-split.csv".to_string())?;
    load_centre(store, centre, &data, &split).await
}

/// The node's Fed-Heart-Disease train and test tables, built through the gate with the node's
/// pseudonymisation key; `excluded` counts the patients whose consent denies research use.
pub async fn heart_dataset(store: &Store) -> Result<GatedDataset> {
    let key = PseudonymKey::load_or_create(store).await?;
    gate::build_dataset(store, &definition()?, &key, datetime::now_micros()).await
}
