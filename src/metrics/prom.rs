//! The Prometheus text exposition format, version 0.0.4: metric families with their HELP and
//! TYPE lines and samples whose label values are escaped, so nothing a client put in a name
//! can break the output.

use std::fmt::Write;

/// The content type of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value that only goes up.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into cumulative buckets.
    Histogram,
}

/// One metric family: a name, a type, a help text and its samples.
#[derive(Clone, Debug)]
pub struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    /// (suffix such as `_bucket`, rendered labels, value)
    samples: Vec<(&'static str, String, f64)>,
}

impl Family {
    /// An empty family.
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    /// Adds a sample named `name` + `suffix` with `labels`.
    pub fn sample(&mut self, suffix: &'static str, labels: &[(&str, &str)], value: f64) {
        let mut text = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            let sep = if i == 0 { "{" } else { "," };
            let _ = write!(text, "{sep}{k}=\"{}\"", escape_label(v));
        }
        if !text.is_empty() {
            text.push('}');
        }
        self.samples.push((suffix, text, value));
    }

    /// Whether the family has no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: integers without a fraction, the rest as Rust prints floats (which the
/// format's float syntax accepts), infinities and NaN by their format names.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The families as exposition text. Families without samples are left out (a HELP and TYPE
/// with nothing under them says nothing).
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families.iter().filter(|f| !f.is_empty()) {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        for (suffix, labels, value) in &f.samples {
            let _ = writeln!(out, "{}{suffix}{labels} {}", f.name, format_value(*value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_empty_families_left_out() {
        let mut f = Family::new("akm_x", Kind::Gauge, "An x.");
        f.sample("", &[("peer", "a\"b\\c\nd")], 1.5);
        let empty = Family::new("akm_y", Kind::Counter, "A y.");
        let text = render(&[f, empty]);
        assert_eq!(
            text,
            "# HELP akm_x An x.\n# TYPE akm_x gauge\nakm_x{peer=\"a\\\"b\\\\c\\nd\"} 1.5\n"
        );
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
