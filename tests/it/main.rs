//! akm's integration tests: one test binary, shared helpers in `support`.

mod pykmip;
mod support;
mod vectors;
