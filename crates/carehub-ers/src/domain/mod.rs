//! The e-RS rules, with no HTTP and no SQL: who may call what ([`access`]), reference data
//! ([`codes`]), the services directory and service search ([`service`]), referrals and their
//! state machine ([`referral`]), the strict reading of `Parameters` bodies ([`params`]), and
//! the e-RS error codes ([`error`]). Resources are built here as FHIR JSON; the HTTP layer
//! only moves them.

pub mod access;
pub mod advice;
pub mod appointment;
pub mod attachment;
pub mod codes;
pub mod error;
pub mod letters;
pub mod params;
pub mod pdf;
pub mod referral;
pub mod service;
pub mod worklist;

pub use error::{Class, ErsError};
