//! akm's integration tests: one test binary, shared helpers in `support`.

mod support;
mod vectors;
