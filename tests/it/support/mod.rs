//! Shared test helpers.

pub mod xml;
