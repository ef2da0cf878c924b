//! The server's state as the model test reads it, outside KMIP: objects through the running
//! server's store (the row, its attributes, the material unwrapped under the KEK), and the
//! SQLite file's change log, which names every object and record each step wrote.

use super::rules::MObj;
use crate::support::server::TestServer;
use akm::ops::Object;
use akm::ttlv::{Tag, Value};

/// What the model compares of one stored object.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub owner: String,
    pub group: Option<String>,
    pub mode: String,
    pub state: u32,
    pub names: Vec<String>,
    pub xattrs: Vec<(String, String)>,
    pub links: Vec<(u32, String)>,
    pub usage: i32,
    pub latest: bool,
    pub fresh: bool,
    /// The plaintext material, if the store still has it.
    pub material: Option<Vec<u8>>,
    /// The Digest attribute's value.
    pub digest: Option<Vec<u8>>,
}

impl Seen {
    /// The same fields of a model object (material aside).
    pub fn of_model(m: &MObj) -> Seen {
        let mut names = m.names.clone();
        names.sort();
        let mut xattrs = m.xattrs.clone();
        xattrs.sort();
        let mut links = m.links.clone();
        links.sort();
        Seen {
            owner: m.policy.owner.clone(),
            group: m.policy.group.clone(),
            mode: m.policy.mode.as_str().to_owned(),
            state: m.state,
            names,
            xattrs,
            links,
            usage: m.usage,
            latest: m.latest,
            fresh: m.fresh,
            material: None,
            digest: None,
        }
    }

    /// This view without material and digest, for comparing with [`Seen::of_model`].
    pub fn metadata(&self) -> Seen {
        Seen {
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode.clone(),
            state: self.state,
            names: self.names.clone(),
            xattrs: self.xattrs.clone(),
            links: self.links.clone(),
            usage: self.usage,
            latest: self.latest,
            fresh: self.fresh,
            material: None,
            digest: None,
        }
    }
}

fn link_of(v: &Value) -> Option<(u32, String)> {
    let Value::Structure(c) = v else { return None };
    let kind = c.iter().find(|t| t.tag == Tag::LINK_TYPE)?.as_enum()?;
    let target = c
        .iter()
        .find(|t| t.tag == Tag::LINKED_OBJECT_IDENTIFIER)?
        .as_text()?;
    Some((kind, target.to_owned()))
}

fn digest_of(obj: &Object) -> Option<Vec<u8>> {
    let Some(Value::Structure(c)) = obj.get("Digest") else {
        return None;
    };
    c.iter()
        .find(|t| t.tag == Tag::DIGEST_VALUE)
        .and_then(|t| t.as_bytes())
        .map(<[u8]>::to_vec)
}

/// Reads object `uid` from the running server's store; None if it does not exist.
pub fn read(server: &TestServer, uid: &str) -> Option<Seen> {
    let row = server.ctx.store.get(uid).expect("store read")?;
    let obj = Object::from_row(row).expect("stored object readable");
    let mut names = obj.names();
    names.sort();
    let mut xattrs: Vec<(String, String)> = obj
        .attrs
        .iter()
        .filter(|a| a.name.starts_with("x-"))
        .map(|a| match &a.value {
            Value::TextString(t) => (a.name.clone(), t.clone()),
            other => (a.name.clone(), format!("{other:?}")),
        })
        .collect();
    xattrs.sort();
    let mut links: Vec<(u32, String)> = obj.all("Link").filter_map(link_of).collect();
    links.sort();
    let material = server
        .ctx
        .store
        .get_material(uid)
        .expect("material read")
        .map(|w| {
            server
                .ctx
                .kek
                .unwrap(uid, obj.key_version, &w)
                .expect("material unwraps")
                .to_vec()
        });
    Some(Seen {
        owner: obj.owner.clone(),
        group: obj.owner_group.clone(),
        mode: obj.access_mode.as_str().to_owned(),
        state: obj.state(),
        names,
        xattrs,
        links,
        usage: obj.int_attr("Cryptographic Usage Mask").unwrap_or(0),
        latest: obj.get("Rotate Latest") != Some(&Value::Boolean(false)),
        fresh: obj.get("Fresh") == Some(&Value::Boolean(true)),
        digest: digest_of(&obj),
        material,
    })
}

/// The change log of the server's SQLite file, read from the file itself.
pub struct ChangeLog {
    db: rusqlite::Connection,
    seen: i64,
}

/// What the change log says one step wrote.
#[derive(Debug, Default)]
pub struct Written {
    pub objects: Vec<String>,
    /// (entity `user` or `group`, name).
    pub records: Vec<(String, String)>,
}

impl ChangeLog {
    pub fn open(server: &TestServer) -> ChangeLog {
        let db = rusqlite::Connection::open_with_flags(
            server.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the database read-only");
        let mut log = ChangeLog { db, seen: 0 };
        log.since();
        log
    }

    /// What was written since the last call.
    pub fn since(&mut self) -> Written {
        let mut stmt = self
            .db
            .prepare_cached("SELECT seq, entity, uid FROM change_log WHERE seq > ?1 ORDER BY seq")
            .expect("change log query");
        let rows = stmt
            .query_map([self.seen], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .expect("change log rows");
        let mut out = Written::default();
        for row in rows {
            let (seq, entity, id) = row.expect("change log row");
            self.seen = self.seen.max(seq);
            if entity == "object" {
                out.objects.push(id);
            } else {
                out.records.push((entity, id));
            }
        }
        out
    }

    /// How many objects the file holds.
    pub fn object_count(&self) -> usize {
        self.db
            .query_row("SELECT COUNT(*) FROM objects", [], |r| r.get::<_, i64>(0))
            .expect("count objects") as usize
    }
}
