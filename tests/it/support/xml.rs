//! OASIS KMIP XML test-case reader (to be written).
