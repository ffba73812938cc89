//! Black-box tests of the FHIR REST API: each starts a real server on a free port with a fresh
//! database and talks HTTP to it.

mod helpers;

mod bundles;
mod crud;
mod errors;
mod search;
