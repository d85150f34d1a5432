//! Consultation summaries: a doctor–patient transcript becomes a structured clinical note
//! (chief complaint, history, review of systems, examination, results, assessment and plan) for
//! the clinician to correct and sign.
//!
//! The approach is extractive, so that a note says nothing the visit did not:
//! - [`dialogue`] parses the transcript into turns and utterances;
//! - [`classifier`] places each utterance in a section (hashed n-gram features, one softmax
//!   layer; its parameters are [`learn::Weights`] and [`classifier::train_local`], with optional
//!   DP-SGD, is the local step of a federated round — hospitals train it on their own signed
//!   notes, labelled by [`align`]; [`federated::LocalSections`] is that step behind the
//!   de-identification gate, for the node);
//! - [`rewrite`] turns spoken words into note sentences (third person, fillers out, digits);
//! - [`facts`] checks every medication, dose, number, laterality and negated finding against
//!   the transcript, and [`draft`] keeps unsupported sentences out of the draft as flags;
//! - [`fhir`] writes the draft as a `preliminary` Composition and DocumentReference and signs
//!   them into `final` versions with a Provenance;
//! - [`eval`] and [`rouge`] score drafts (ROUGE-1/2/Lsum, hallucination and omission rates).
//!
//! ```
//! let transcript = "[doctor] hi , you're here today for left knee pain .\n\
//!     [patient] yes , my left knee has been hurting for two weeks .\n\
//!     [doctor] any fever or chills ?\n[patient] no .\n\
//!     [doctor] i'm going to prescribe meloxicam fifteen milligrams once a day .";
//! let draft = notes::Summarizer::shipped()?.draft(transcript)?;
//! assert!(draft.text().starts_with("CHIEF COMPLAINT\n\nLeft knee pain."));
//! assert!(draft.flags.is_empty());
//! # Ok::<(), notes::Error>(())
//! ```
#![warn(missing_docs)]

pub mod align;
pub mod classifier;
pub mod corpus;
pub mod dialogue;
pub mod draft;
mod error;
pub mod eval;
pub mod facts;
pub mod federated;
pub mod fhir;
pub mod rewrite;
pub mod rouge;
pub mod section;
mod stem;
pub mod text;

pub use draft::{Draft, DraftConfig, Summarizer};
pub use error::Error;
pub use learn::Weights;
pub use section::Section;
