//! Console sessions: a random id in a cookie (Secure, HttpOnly, SameSite=Strict), bound to
//! the SHA-256 fingerprint of the client certificate that began it, with a random CSRF
//! token every form carries back. A session ends after an idle time and, however busy, after
//! an absolute time; a cookie presented with another certificate is no session at all. The
//! certificate authenticates every request; the session only carries the CSRF token and the
//! limits. Held in memory: a restart ends every session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most sessions held; beyond it the least recently used one ends.
const MAX_SESSIONS: usize = 10_000;

/// Most sessions one certificate holds; its next one ends its least recently used, so one
/// client beginning sessions in a loop ends only its own, never other clients'.
const MAX_SESSIONS_PER_CERTIFICATE: usize = 32;

/// One session.
#[derive(Clone, Debug)]
struct Session {
    /// The client certificate it is bound to.
    fingerprint: String,
    /// The CSRF token of its forms.
    csrf: String,
    started: Instant,
    last_seen: Instant,
}

/// A session in force for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// Its id (the cookie value).
    pub id: String,
    /// Its CSRF token.
    pub csrf: String,
    /// Whether it began with this request (the response sets the cookie).
    pub new: bool,
}

/// Every session.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
    max: Duration,
    /// [`MAX_SESSIONS`] (smaller in unit tests).
    cap: usize,
}

/// 32 random bytes, hex.
fn random_token() -> String {
    hex::encode(crate::crypto::random_bytes(32).as_slice())
}

impl Sessions {
    /// Sessions that end after `idle` without a request, or `max` after they began.
    pub fn new(idle: Duration, max: Duration) -> Sessions {
        Sessions::with_cap(idle, max, MAX_SESSIONS)
    }

    fn with_cap(idle: Duration, max: Duration, cap: usize) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
            max,
            cap,
        }
    }

    /// The session `id` names if it is in force for `fingerprint` at `now` (and marks it
    /// used), else `None`. A session found expired is ended.
    pub fn find(&self, id: Option<&str>, fingerprint: &str, now: Instant) -> Option<Current> {
        let id = id?;
        let mut map = self.map.lock().ok()?;
        let s = map.get_mut(id)?;
        if s.fingerprint != fingerprint {
            // Another certificate's cookie: not this client's session (and not ended, or a
            // stolen cookie could log its owner out).
            return None;
        }
        if now.duration_since(s.last_seen) > self.idle || now.duration_since(s.started) > self.max {
            map.remove(id);
            return None;
        }
        s.last_seen = now;
        Some(Current {
            id: id.to_owned(),
            csrf: s.csrf.clone(),
            new: false,
        })
    }

    /// The session `id` names for `fingerprint`, or a new one.
    pub fn find_or_begin(&self, id: Option<&str>, fingerprint: &str, now: Instant) -> Current {
        self.find(id, fingerprint, now)
            .unwrap_or_else(|| self.begin(fingerprint, now))
    }

    /// Begins a session for `fingerprint`.
    pub fn begin(&self, fingerprint: &str, now: Instant) -> Current {
        let (id, csrf) = (random_token(), random_token());
        if let Ok(mut map) = self.map.lock() {
            let own = map
                .values()
                .filter(|s| s.fingerprint == fingerprint)
                .count();
            if own >= MAX_SESSIONS_PER_CERTIFICATE {
                remove_least_recent(&mut map, |s| s.fingerprint == fingerprint);
            }
            if map.len() >= self.cap {
                let (idle, max) = (self.idle, self.max);
                map.retain(|_, s| {
                    now.duration_since(s.last_seen) <= idle && now.duration_since(s.started) <= max
                });
                if map.len() >= self.cap {
                    remove_least_recent(&mut map, |_| true);
                }
            }
            map.insert(
                id.clone(),
                Session {
                    fingerprint: fingerprint.to_owned(),
                    csrf: csrf.clone(),
                    started: now,
                    last_seen: now,
                },
            );
        }
        Current {
            id,
            csrf,
            new: true,
        }
    }

    /// Ends session `id` (logout).
    pub fn end(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(id);
        }
    }
}

/// Ends the least recently used of the sessions `which` picks.
fn remove_least_recent(map: &mut HashMap<String, Session>, which: impl Fn(&Session) -> bool) {
    let oldest = map
        .iter()
        .filter(|(_, s)| which(s))
        .min_by_key(|(_, s)| s.last_seen)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        map.remove(&k);
    }
}

/// Whether the token a form sent is the session's, compared in constant time.
pub fn csrf_matches(session: &Current, sent: Option<&str>) -> bool {
    let Some(sent) = sent else {
        return false;
    };
    sent.len() == session.csrf.len()
        && sent
            .bytes()
            .zip(session.csrf.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The Set-Cookie header line for `session`.
pub fn cookie_header(session: &Current) -> String {
    format!(
        "Set-Cookie: {}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
        super::http::SESSION_COOKIE,
        session.id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_bound_to_its_certificate_and_ends_when_idle_or_old() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(300));
        let t0 = Instant::now();
        let a = s.begin("fp-a", t0);
        assert!(a.new && a.id.len() == 64 && a.csrf.len() == 64 && a.id != a.csrf);
        let found = s.find(Some(&a.id), "fp-a", t0).unwrap();
        assert_eq!((found.csrf.as_str(), found.new), (a.csrf.as_str(), false));
        // Another certificate with the same cookie has no session, and does not end it.
        assert!(s.find(Some(&a.id), "fp-b", t0).is_none());
        assert!(s.find(Some(&a.id), "fp-a", t0).is_some());
        // Idle too long: ended.
        assert!(s
            .find(Some(&a.id), "fp-a", t0 + Duration::from_secs(61))
            .is_none());
        assert!(s.find(Some(&a.id), "fp-a", t0).is_none());
        // Busy, but past the absolute limit: ended.
        let b = s.begin("fp-a", t0);
        for minute in 1..5 {
            assert!(s
                .find(Some(&b.id), "fp-a", t0 + Duration::from_secs(minute * 59))
                .is_some());
        }
        assert!(s
            .find(Some(&b.id), "fp-a", t0 + Duration::from_secs(301))
            .is_none());
    }

    #[test]
    fn a_flood_of_sessions_from_one_certificate_ends_only_its_own() {
        let s = Sessions::with_cap(Duration::from_secs(60), Duration::from_secs(300), 100);
        let t0 = Instant::now();
        let admin = s.begin("fp-admin", t0);
        let first = s.begin("fp-eve", t0);
        for i in 1..=1000 {
            s.begin("fp-eve", t0 + Duration::from_millis(i));
        }
        let t1 = t0 + Duration::from_secs(2);
        assert!(s.find(Some(&admin.id), "fp-admin", t1).is_some());
        assert!(s.find(Some(&first.id), "fp-eve", t1).is_none());
        let held = s.map.lock().unwrap().len();
        assert_eq!(held, 1 + MAX_SESSIONS_PER_CERTIFICATE);
        // Many certificates may still fill the whole table: then the least recent ends.
        for i in 0..200 {
            s.begin(&format!("fp-{i}"), t1 + Duration::from_millis(i));
        }
        assert_eq!(s.map.lock().unwrap().len(), 100);
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(300));
        let a = s.begin("fp", Instant::now());
        assert!(csrf_matches(&a, Some(&a.csrf.clone())));
        assert!(!csrf_matches(&a, None));
        assert!(!csrf_matches(&a, Some("")));
        assert!(!csrf_matches(&a, Some(&a.csrf[..63])));
        let other = s.begin("fp", Instant::now());
        assert!(!csrf_matches(&a, Some(&other.csrf)));
        assert!(cookie_header(&a).contains("SameSite=Strict"));
    }
}
