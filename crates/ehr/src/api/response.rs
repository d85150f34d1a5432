//! FHIR responses: JSON with the FHIR media type, version headers, OperationOutcomes for errors,
//! and request bodies read as FHIR JSON.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::datetime;
use crate::error::Error;
use crate::store::{Version, Written};

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// A response with a FHIR JSON body (or none) and headers.
pub struct Fhir {
    status: StatusCode,
    body: Option<Vec<u8>>,
    headers: Vec<(header::HeaderName, String)>,
    content_type: std::borrow::Cow<'static, str>,
}

impl Fhir {
    /// A response with `body`.
    pub fn json(status: StatusCode, body: &Value) -> Fhir {
        Fhir {
            status,
            body: Some(body.to_string().into_bytes()),
            headers: Vec::new(),
            content_type: FHIR_JSON.into(),
        }
    }

    /// A response with a body that is already serialised, of media type `content_type`.
    pub fn text(status: StatusCode, body: String, content_type: &'static str) -> Fhir {
        Fhir {
            status,
            body: Some(body.into_bytes()),
            headers: Vec::new(),
            content_type: content_type.into(),
        }
    }

    /// A response whose body is the content of a Binary, of its own media type.
    pub fn bytes(status: StatusCode, body: Vec<u8>, content_type: String) -> Fhir {
        Fhir {
            status,
            body: Some(body),
            headers: Vec::new(),
            content_type: content_type.into(),
        }
    }

    /// A response without a body.
    pub fn empty(status: StatusCode) -> Fhir {
        Fhir {
            status,
            body: None,
            headers: Vec::new(),
            content_type: FHIR_JSON.into(),
        }
    }

    /// This response as a Bundle entry of a batch or transaction response.
    pub fn into_entry(self) -> Value {
        let mut entry =
            json!({"response": {"status": super::bundles::status_line(self.status.as_u16())}});
        if let Some(resource) = self
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        {
            entry["resource"] = resource;
        }
        entry
    }

    /// Adds a header.
    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Fhir {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds ETag, Last-Modified and (for creates and updates) Location.
    pub fn versioned(
        self,
        base: &str,
        resource_type: &str,
        id: &str,
        version: i64,
        last_updated: i64,
        location: bool,
    ) -> Fhir {
        let mut response = self
            .header(header::ETAG, format!("W/\"{version}\""))
            .header(header::LAST_MODIFIED, http_date(last_updated));
        if location {
            response = response.header(
                header::LOCATION,
                format!("{base}/{resource_type}/{id}/_history/{version}"),
            );
        }
        response
    }
}

impl IntoResponse for Fhir {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => {
                let mut r = (self.status, body).into_response();
                let content_type = HeaderValue::from_str(&self.content_type)
                    .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
                r.headers_mut().insert(header::CONTENT_TYPE, content_type);
                r
            }
            None => self.status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

/// An [`Error`] answered as an OperationOutcome with its status code.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

/// Why a request was refused, kept on the response for the audit of refusals.
#[derive(Clone, Debug)]
pub struct Refusal(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = Fhir::json(status, &self.0.to_outcome());
        if status == StatusCode::UNAUTHORIZED {
            response = response.header(header::WWW_AUTHENTICATE, "Bearer realm=\"cohort-ehr\"");
        }
        let mut response = response.into_response();
        if status.is_client_error() {
            response
                .extensions_mut()
                .insert(Refusal(self.0.to_string()));
        }
        response
    }
}

/// Handler result.
pub type ApiResult = Result<Fhir, ApiError>;

/// Unknown paths.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError(Error::NotFound(format!(
        "no FHIR endpoint at {}",
        uri.path()
    )))
}

/// Reads a request body as one FHIR JSON resource.
pub fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, Error> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let media = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            media.as_str(),
            "application/fhir+json" | "application/json" | "application/json+fhir" | "text/json"
        ) {
            return Err(Error::UnsupportedMediaType(format!(
                "Content-Type {media} is not supported; send application/fhir+json"
            )));
        }
    }
    if body.is_empty() {
        return Err(Error::invalid(
            "the request has no body; a FHIR resource is expected",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("the body is not valid JSON: {e}")))
}

/// The stored JSON text of a version, parsed.
pub fn parse_stored(version: &Version) -> Result<Value, Error> {
    let text = version
        .content
        .as_deref()
        .ok_or_else(|| Error::Gone(format!("{}/{}", version.resource_type, version.id)))?;
    serde_json::from_str(text)
        .map_err(|e| Error::Corrupt(format!("{}/{}: {e}", version.resource_type, version.id)))
}

/// How the client wants create and update answered (`Prefer: return=…`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// No body.
    Minimal,
    /// The stored resource (default).
    Representation,
    /// An OperationOutcome.
    Outcome,
}

/// Reads `Prefer: return=…`.
pub fn prefer_return(headers: &HeaderMap, default: Return) -> Return {
    let prefer = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if prefer.contains("return=minimal") {
        Return::Minimal
    } else if prefer.contains("return=OperationOutcome") {
        Return::Outcome
    } else if prefer.contains("return=representation") {
        Return::Representation
    } else {
        default
    }
}

/// The response to a create or update.
pub fn written_response(base: &str, written: &Written, headers: &HeaderMap) -> Fhir {
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let response = match (
        prefer_return(headers, Return::Representation),
        &written.resource,
    ) {
        (Return::Minimal, _) | (_, None) => Fhir::empty(status),
        (Return::Representation, Some(resource)) => Fhir::json(status, resource),
        (Return::Outcome, Some(_)) => Fhir::json(
            status,
            &crate::error::information_outcome(&format!(
                "{}/{} stored as version {}",
                written.resource_type, written.id, written.version
            )),
        ),
    };
    response.versioned(
        base,
        written.resource_type,
        &written.id,
        written.version,
        written.last_updated,
        true,
    )
}

/// An HTTP date (RFC 9110 IMF-fixdate) from microseconds since the epoch.
pub fn http_date(micros: i64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = micros.div_euclid(1_000_000);
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            DAYS[usize::from(t.weekday().number_days_from_monday())],
            t.day(),
            MONTHS[usize::from(u8::from(t.month()) - 1)],
            t.year(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "Thu, 01 Jan 1970 00:00:00 GMT".to_string(),
    }
}

/// A Bundle entry for a stored version.
pub fn entry(base: &str, version: &Version, resource: Value, mode: Option<&str>) -> Value {
    let mut entry = json!({
        "fullUrl": format!("{base}/{}/{}", version.resource_type, version.id),
        "resource": resource,
    });
    if let Some(mode) = mode {
        entry["search"] = json!({"mode": mode});
    }
    entry
}

/// The instant a version was written, as FHIR text.
pub fn instant(version: &Version) -> String {
    datetime::format_instant(version.last_updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_follow_rfc_9110() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(1_795_845_249_000_000),
            "Sat, 28 Nov 2026 05:54:09 GMT"
        );
    }

    #[test]
    fn bodies_must_be_fhir_json() {
        let mut headers = HeaderMap::new();
        assert!(parse_body(&headers, &Bytes::from_static(b"{\"a\":1}")).is_ok());
        let err = parse_body(&headers, &Bytes::from_static(b"{oops")).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+xml"),
        );
        assert_eq!(
            parse_body(&headers, &Bytes::from_static(b"<x/>"))
                .unwrap_err()
                .status(),
            415
        );
    }
}
