//! KMIP messages, operation payloads and attributes, in both the 1.x and 2.x encodings.

pub mod enums;
