//! FHIR R4 ImagingStudy for a stored study, linked to its Patient.

use serde_json::{Value, json};

use crate::ehr::PatientRef;
use crate::index::StudyRecord;

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";

/// FHIR `dateTime` from DICOM Study Date and Time (`None` if no date).
fn started(date: Option<&str>, time: Option<&str>) -> Option<String> {
    let date = date.filter(|d| d.len() == 8 && d.chars().all(|c| c.is_ascii_digit()))?;
    let day = format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..8]);
    let digits: String = time
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some(if digits.len() >= 6 {
        format!("{day}T{}:{}:{}", &digits[..2], &digits[2..4], &digits[4..6])
    } else {
        day
    })
}

fn modality(code: &str) -> Value {
    json!({ "system": DCM, "code": code })
}

/// The ImagingStudy resource (id = Study Instance UID, a valid FHIR id).
pub fn imaging_study(study: &StudyRecord, patient: &PatientRef) -> Value {
    let mut modalities: Vec<&str> = study
        .series
        .values()
        .filter_map(|s| s.modality.as_deref())
        .collect();
    modalities.sort_unstable();
    modalities.dedup();
    let series: Vec<Value> = study
        .series
        .iter()
        .map(|(uid, s)| {
            let instances: Vec<Value> = s
                .instances
                .iter()
                .map(|(sop, i)| {
                    let mut instance = json!({
                        "uid": sop,
                        "sopClass": { "system": "urn:ietf:rfc:3986", "code": format!("urn:oid:{}", i.sop_class_uid) },
                    });
                    if let Some(n) = i.number {
                        instance["number"] = json!(n);
                    }
                    instance
                })
                .collect();
            let mut entry = json!({
                "uid": uid,
                "modality": modality(s.modality.as_deref().unwrap_or("US")),
                "numberOfInstances": s.instances.len(),
                "instance": instances,
            });
            if let Some(n) = s.number {
                entry["number"] = json!(n);
            }
            if let Some(d) = &s.description {
                entry["description"] = json!(d);
            }
            entry
        })
        .collect();
    let mut identifiers =
        vec![json!({ "system": "urn:dicom:uid", "value": format!("urn:oid:{}", study.uid) })];
    if let Some(accession) = &study.accession_number {
        identifiers.push(json!({
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN" }] },
            "value": accession,
        }));
    }
    let mut subject = json!({ "reference": format!("Patient/{}", patient.id) });
    if let Some(display) = &patient.display {
        subject["display"] = json!(display);
    }
    let mut resource = json!({
        "resourceType": "ImagingStudy",
        "id": study.uid,
        "identifier": identifiers,
        "status": "available",
        "modality": modalities.into_iter().map(modality).collect::<Vec<_>>(),
        "subject": subject,
        "numberOfSeries": study.series.len(),
        "numberOfInstances": study.instance_count(),
        "series": series,
    });
    if let Some(started) = started(study.date.as_deref(), study.time.as_deref()) {
        resource["started"] = json!(started);
    }
    if let Some(d) = &study.description {
        resource["description"] = json!(d);
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_date_and_time_become_a_fhir_datetime() {
        assert_eq!(
            started(Some("20170302"), Some("172457.000")).as_deref(),
            Some("2017-03-02T17:24:57")
        );
        assert_eq!(
            started(Some("20170302"), None).as_deref(),
            Some("2017-03-02")
        );
        assert_eq!(started(Some("2017.03.02"), None), None);
    }
}
