//! A visit's dictation: the clinician uploads a recording of the dictation or
//! the consultation on the visit page; the node transcribes it on its own
//! machine (with the patient's record as vocabulary) and files the transcript
//! as a preliminary DocumentReference of the visit, from which the note is
//! drafted. The upload and the filing are an AuditEvent.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ehr::audit::Action;
use ehr::auth::Interaction;
use futures::future::BoxFuture;
use maud::{Markup, html};

use super::access::{ClientAddress, require};
use super::visit::{back_to, record_change, visit};
use super::{NodeState, Page};
use crate::auth::{Refused, Viewer};

/// The page saying why nothing was filed (422: the request was understood, the recording not).
fn not_filed(viewer: &Viewer, encounter: &str, why: Markup) -> Refused {
    let body = html! {
        p { "Nothing was filed: " (why) }
        p { a href={ "/encounters/" (encounter) } { "Back to the visit" } }
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        viewer.page("Not filed", body),
    )
        .into_response()
        .into()
}

/// A recording uploaded for a visit.
pub struct Upload {
    /// The visit's patient (`Patient` id).
    pub patient: String,
    /// The visit (`Encounter` id).
    pub encounter: String,
    /// The file's bytes.
    pub audio: Vec<u8>,
    /// Its media type as the browser sent it.
    pub content_type: String,
    /// Its language (`en`, `fr`).
    pub language: String,
}

/// Speech-to-text into the record, as the node provides it.
pub trait Transcription: Send + Sync {
    /// Transcribe `upload` and file the transcript: the new DocumentReference's id, or why
    /// nothing was filed (a sentence for the person who uploaded it).
    fn transcribe(&self, upload: Upload) -> BoxFuture<'_, Result<String, String>>;

    /// Largest recording accepted, in bytes.
    fn max_bytes(&self) -> usize;
}

/// The upload form of the visit page.
pub(super) fn form(viewer: &Viewer, encounter: &str) -> Markup {
    html! {
        form.dictation method="post" action={ "/encounters/" (encounter) "/dictation" }
            enctype="multipart/form-data" {
            (viewer.csrf_field())
            p {
                label for="audio" { "Recording of the dictation or consultation (WAV, FLAC, MP3, Ogg)" }
                input #audio type="file" name="audio" accept="audio/*" required;
            }
            p {
                label for="lang" { "Language" }
                select #lang name="lang" {
                    option value="en" selected { "English" }
                    option value="fr" { "French" }
                }
            }
            button type="submit" { "Transcribe on this node" }
        }
    }
}

/// The upload's fields.
struct Fields {
    csrf: String,
    audio: Vec<u8>,
    content_type: String,
    language: String,
}

async fn fields(mut multipart: Multipart) -> Result<Fields, String> {
    let mut fields = Fields {
        csrf: String::new(),
        audio: Vec::new(),
        content_type: String::new(),
        language: "en".into(),
    };
    while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        match field.name().unwrap_or_default() {
            "csrf" => fields.csrf = field.text().await.map_err(|e| e.body_text())?,
            "lang" => fields.language = field.text().await.map_err(|e| e.body_text())?,
            "audio" => {
                fields.content_type = field.content_type().unwrap_or_default().to_string();
                fields.audio = Vec::from(field.bytes().await.map_err(|e| e.body_text())?);
            }
            _ => {}
        }
    }
    Ok(fields)
}

/// Transcribe an uploaded recording into the visit's record.
pub(super) async fn upload(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Page {
    require(&viewer, "DocumentReference", Interaction::Create)?;
    let fields = fields(multipart).await.map_err(|e| {
        not_filed(
            &viewer,
            &id,
            html! { "the upload could not be read (" (e) ")." },
        )
    })?;
    viewer.check_csrf(&fields.csrf)?;
    let Some(transcription) = s.console.dictation.clone() else {
        return Err(not_filed(
            &viewer,
            &id,
            html! { "this node has no speech model configured ([dictation] in node.toml)." },
        ));
    };
    if fields.audio.is_empty() {
        return Err(not_filed(
            &viewer,
            &id,
            html! { "choose a recording to transcribe." },
        ));
    }
    let (_, patient, _) = visit(&s, &viewer, &id).await?;
    let filed = transcription
        .transcribe(Upload {
            patient: patient.clone(),
            encounter: id.clone(),
            audio: fields.audio,
            content_type: fields.content_type,
            language: fields.language,
        })
        .await
        .map_err(|why| not_filed(&viewer, &id, html! { (why) }))?;
    record_change(
        &s,
        &viewer,
        &address,
        (Action::Create, "create", "dictation transcribed"),
        vec![format!("DocumentReference/{filed}")],
        &patient,
    )
    .await?;
    Ok(back_to(&id).into_response())
}
