//! The node's memory budget: one figure in node.toml (`[memory] budget_mib`) for the whole
//! process. The EHR's page caches and the largest FHIR request are sized from it, and every
//! request that brings data in (FHIR writes, DICOMweb uploads, dictations) is admitted only
//! while the process's resident memory, plus what the requests already admitted may still
//! take, leaves room for it: otherwise it waits for memory to be freed, then is refused with
//! `503` and `Retry-After`, never taken in to push the node past its budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

const MIB: u64 = 1 << 20;

/// The `[memory]` table of node.toml.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The most resident memory the node process may use, in MiB.
    #[serde(default = "default_budget_mib")]
    pub budget_mib: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            budget_mib: default_budget_mib(),
        }
    }
}

fn default_budget_mib() -> u64 {
    1024
}

/// The smallest budget a node starts with: its code, runtime, TLS and database connections at
/// rest take most of it.
pub const MIN_BUDGET_MIB: u64 = 128;

/// What a budget gives each part of the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The whole budget, bytes.
    pub budget: u64,
    /// The EHR's SQLite page caches: an eighth of the budget, at most their defaults.
    pub ehr_caches: ehr::store::Caches,
    /// The largest FHIR request body taken in: parsed, a JSON body takes about
    /// [`FHIR_EXPANSION`] times its size, and four such requests fit in the budget.
    pub fhir_body_limit: usize,
}

/// How much memory a FHIR request takes, parsed and indexed, for each byte of its JSON body:
/// measured on a transaction Bundle of 4,000 Observations (1.36 MB), whose request took 48 MB
/// of heap at its peak (heaptrack), plus the allocator's own overhead.
pub const FHIR_EXPANSION: u64 = 40;

/// What a DICOMweb upload holds in memory whatever its size: it is streamed to disk part by part.
const DICOMWEB_UPLOAD: u64 = 16 * MIB;

/// How much memory a dictation takes for each byte of its recording: decoded to 16 kHz samples
/// in 32-bit floats (compressed audio decodes to many times its size) and run through the model.
const DICTATION_EXPANSION: u64 = 16;

impl MemoryConfig {
    /// The budget's shares, or why the budget is too small.
    pub fn plan(&self) -> Result<MemoryPlan, String> {
        if self.budget_mib < MIN_BUDGET_MIB {
            return Err(format!(
                "[memory] budget_mib = {} is below the {MIN_BUDGET_MIB} MiB a node needs at rest",
                self.budget_mib
            ));
        }
        let budget = self.budget_mib.saturating_mul(MIB);
        let body = (budget / FHIR_EXPANSION / 4).max(2 * MIB);
        Ok(MemoryPlan {
            budget,
            ehr_caches: ehr::store::Caches::within(budget / 8),
            fhir_body_limit: usize::try_from(body).unwrap_or(usize::MAX),
        })
    }
}

/// The resident memory of this process, bytes (Linux `/proc/self/statm`; `None` elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The most resident memory this process has had, bytes (Linux `VmHWM`).
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Why a request was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The node stayed at its budget for as long as the request may wait.
    Busy {
        /// The budget, bytes.
        budget: u64,
    },
    /// The request alone would need more than the budget leaves at rest.
    TooLarge {
        /// What it would need, bytes.
        needs: u64,
        /// What the budget leaves beside the node at rest, bytes.
        room: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Busy { budget } => write!(
                f,
                "the node is at its memory budget ({} MiB, [memory] budget_mib): try again shortly",
                budget / MIB
            ),
            Refusal::TooLarge { needs, room } => write!(
                f,
                "this request would need about {} MiB; the node's memory budget leaves {} MiB \
                 ([memory] budget_mib)",
                needs.div_ceil(MIB),
                room / MIB
            ),
        }
    }
}

/// Admits memory-heavy work while the process stays under its budget.
#[derive(Debug)]
pub struct MemoryGuard {
    budget: u64,
    /// What admitted work may still take, bytes: the sum of the estimates of what is in flight.
    reserved: AtomicU64,
    /// Resident memory when the guard was made: the node at rest.
    at_rest: u64,
    /// How long a request waits for room before it is refused.
    patience: Duration,
    freed: tokio::sync::Notify,
    measure: fn() -> Option<u64>,
}

/// Work admitted by a [`MemoryGuard`]; its estimate is handed back when dropped.
#[derive(Debug)]
pub struct Admission {
    guard: Arc<MemoryGuard>,
    estimate: u64,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.guard
            .reserved
            .fetch_sub(self.estimate, Ordering::AcqRel);
        self.guard.freed.notify_waiters();
    }
}

/// How often a waiting request looks at resident memory again (memory freed by the allocator
/// is not announced).
const RECHECK: Duration = Duration::from_millis(50);

impl MemoryGuard {
    /// A guard keeping this process under `budget` bytes; requests wait up to `patience`.
    pub fn new(budget: u64, patience: Duration) -> Arc<Self> {
        Self::measuring(budget, patience, resident_bytes)
    }

    fn measuring(budget: u64, patience: Duration, measure: fn() -> Option<u64>) -> Arc<Self> {
        Arc::new(MemoryGuard {
            budget,
            reserved: AtomicU64::new(0),
            at_rest: measure().unwrap_or(0),
            patience,
            freed: tokio::sync::Notify::new(),
            measure,
        })
    }

    /// The budget, bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Waits until work that may take `estimate` bytes fits, then admits it.
    ///
    /// # Errors
    /// [`Refusal::TooLarge`] at once when it cannot fit even with the node at rest;
    /// [`Refusal::Busy`] when no room came within the guard's patience.
    pub async fn admit(self: &Arc<Self>, estimate: u64) -> Result<Admission, Refusal> {
        let room = self.budget.saturating_sub(self.at_rest);
        if estimate > room {
            return Err(Refusal::TooLarge {
                needs: estimate,
                room,
            });
        }
        let deadline = tokio::time::Instant::now() + self.patience;
        loop {
            let freed = self.freed.notified();
            if let Some(admission) = self.try_admit(estimate) {
                return Ok(admission);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Refusal::Busy {
                    budget: self.budget,
                });
            }
            let _ = tokio::time::timeout(RECHECK, freed).await;
        }
    }

    fn try_admit(self: &Arc<Self>, estimate: u64) -> Option<Admission> {
        let resident = (self.measure)().unwrap_or(self.at_rest);
        let mut reserved = self.reserved.load(Ordering::Acquire);
        loop {
            // Resident memory already holds part of what admitted work reserved: counting both
            // errs on the side of the budget.
            let needed = resident.saturating_add(reserved).saturating_add(estimate);
            if needed > self.budget {
                return None;
            }
            match self.reserved.compare_exchange_weak(
                reserved,
                reserved + estimate,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Admission {
                        guard: self.clone(),
                        estimate,
                    });
                }
                Err(now) => reserved = now,
            }
        }
    }
}

/// What a request that brings data in may take in memory, by where it goes; `None` for the
/// requests that only read.
pub fn estimate(
    method: &Method,
    path: &str,
    content_length: Option<u64>,
    body_limit: u64,
) -> Option<u64> {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        return None;
    }
    let length = content_length.unwrap_or(body_limit);
    Some(if path.starts_with("/dicomweb") {
        DICOMWEB_UPLOAD
    } else if path.starts_with("/speech") {
        length.saturating_mul(DICTATION_EXPANSION)
    } else {
        length.saturating_mul(FHIR_EXPANSION)
    })
}

/// How long a request waits for memory before it is refused.
const PATIENCE: Duration = Duration::from_secs(20);

/// `app` under the budget: FHIR bodies up to the plan's limit, and every request that brings
/// data in admitted by a [`MemoryGuard`] of the process (made now: the node at rest).
pub fn guarded(app: Router, plan: &MemoryPlan) -> Router {
    let guard = MemoryGuard::new(plan.budget, PATIENCE);
    tracing::info!(
        budget_mib = plan.budget / MIB,
        at_rest_mib = guard.at_rest / MIB,
        fhir_body_limit_mib = plan.fhir_body_limit as u64 / MIB,
        "memory budget"
    );
    let limit = plan.fhir_body_limit as u64;
    app.layer(axum::middleware::from_fn_with_state((guard, limit), admit))
        .layer(DefaultBodyLimit::max(plan.fhir_body_limit))
}

/// The router layer: admits a request that brings data in, or refuses it.
async fn admit(
    State((guard, body_limit)): State<(Arc<MemoryGuard>, u64)>,
    request: Request,
    next: Next,
) -> Response {
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let Some(estimate) = estimate(request.method(), request.uri().path(), length, body_limit)
    else {
        return next.run(request).await;
    };
    match guard.admit(estimate).await {
        Ok(admission) => {
            let response = next.run(request).await;
            drop(admission);
            response
        }
        Err(refusal) => {
            tracing::warn!(path = request.uri().path(), %refusal, "request refused");
            let status = match refusal {
                Refusal::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            };
            let mut response = (status, refusal.to_string()).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    static RESIDENT: AtomicU64 = AtomicU64::new(0);

    fn fake_resident() -> Option<u64> {
        Some(RESIDENT.load(Ordering::SeqCst))
    }

    #[test]
    fn a_budget_is_split_and_a_too_small_one_refused() {
        let plan = MemoryConfig { budget_mib: 1024 }.plan().unwrap();
        assert_eq!(plan.ehr_caches, ehr::store::Caches::default());
        assert_eq!(
            plan.fhir_body_limit as u64,
            (1024 * MIB) / FHIR_EXPANSION / 4
        );
        let small = MemoryConfig { budget_mib: 192 }.plan().unwrap();
        assert!(u64::from(small.ehr_caches.total_kib()) * 1024 <= 24 * MIB);
        assert_eq!(small.fhir_body_limit as u64, 2 * MIB);
        let err = MemoryConfig { budget_mib: 64 }.plan().unwrap_err();
        assert!(err.contains("below the 128 MiB"), "{err}");
    }

    #[test]
    fn only_requests_that_bring_data_in_are_estimated() {
        let limit = 4 * MIB;
        assert_eq!(estimate(&Method::GET, "/fhir/Patient", None, limit), None);
        assert_eq!(
            estimate(&Method::POST, "/fhir", Some(MIB), limit),
            Some(FHIR_EXPANSION * MIB)
        );
        assert_eq!(
            estimate(&Method::PUT, "/fhir/Patient/1", None, limit),
            Some(FHIR_EXPANSION * limit)
        );
        assert_eq!(
            estimate(&Method::POST, "/dicomweb/studies", Some(900 * MIB), limit),
            Some(DICOMWEB_UPLOAD)
        );
        assert_eq!(
            estimate(&Method::POST, "/speech/transcripts", Some(MIB), limit),
            Some(DICTATION_EXPANSION * MIB)
        );
    }

    // One test drives the fake resident memory, so that no other test moves it meanwhile.
    #[tokio::test(start_paused = true)]
    async fn work_waits_for_room_under_the_budget_and_is_refused_after_waiting() {
        RESIDENT.store(100 * MIB, Ordering::SeqCst);
        let guard = MemoryGuard::measuring(200 * MIB, Duration::from_secs(2), fake_resident);

        // More than the budget leaves at rest: refused at once.
        let err = guard.admit(101 * MIB).await.unwrap_err();
        assert_eq!(
            err,
            Refusal::TooLarge {
                needs: 101 * MIB,
                room: 100 * MIB
            }
        );
        assert!(err.to_string().contains("leaves 100 MiB"), "{err}");

        // Reservations count until their work ends.
        let first = guard.admit(60 * MIB).await.unwrap();
        let second = guard.clone();
        let waiting = tokio::spawn(async move { second.admit(60 * MIB).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "admitted past the budget");
        drop(first);
        waiting.await.unwrap().unwrap();

        // Resident memory counts too: the allocator has not given memory back yet.
        RESIDENT.store(190 * MIB, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let err = guard.admit(20 * MIB).await.unwrap_err();
        assert_eq!(err, Refusal::Busy { budget: 200 * MIB });
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert!(err.to_string().contains("200 MiB"), "{err}");

        // Memory given back lets waiting work in.
        let third = guard.clone();
        let waiting = tokio::spawn(async move { third.admit(20 * MIB).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(300)).await;
        RESIDENT.store(120 * MIB, Ordering::SeqCst);
        waiting.await.unwrap().unwrap();
    }
}
