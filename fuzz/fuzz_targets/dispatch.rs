//! Fuzz target: the whole decode → parse → dispatch → encode path against a real temporary
//! store (SQLite, wrapped keys) as an administrator, so every operation's payload parsing and
//! the store queries see hostile input. Nothing may panic; every request gets response items
//! that encode.
#![no_main]

use akm::audit::journal::SyncPolicy;
use akm::audit::signer::Signer;
use akm::audit::{Audit, JournalSettings};
use akm::app::CtxBuilder;
use akm::crypto::Kek;
use akm::identity::Principal;
use akm::kmip::{encode_response, peek_version, ProtocolVersion, RequestMessage};
use akm::ops::{self, Ctx};
use akm::store::Store;
use akm::ttlv::{decode, Limits};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The server state shared by every run: built once, in a temporary directory (on /dev/shm
/// when it exists, so SQLite's fsyncs cost little).
struct World {
    ctx: Ctx,
    admin: Principal,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temporary directory");
        let store = Store::open(&dir.path().join("akm.db")).expect("store");
        let kek = Kek::from_bytes(&[0x4B; 32]).expect("kek");
        let journal = JournalSettings {
            path: dir.path().join("audit.log"),
            server_name: "akm-fuzz".into(),
            checkpoint_every: 1000,
            checkpoint_secs: 60,
            sync: SyncPolicy::EveryRecord,
        };
        let audit = Audit::open(journal, Signer::from_seed(&[0x5A; 32]), vec![]).expect("audit");
        let admin = Principal {
            cn: "fuzz-admin".into(),
            ous: vec!["admins".into()],
            serial: "01".into(),
            fingerprint: "00".repeat(32),
            subject: "OU=admins, CN=fuzz-admin".into(),
        };
        World {
            ctx: CtxBuilder::new(store, kek, audit).build(),
            admin,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(item) = decode(data, &Limits::default()) else {
        return;
    };
    let version = peek_version(&item)
        .map(ProtocolVersion::nearest_supported)
        .unwrap_or(ProtocolVersion::V1_0);
    let Ok(msg) = RequestMessage::parse(item) else {
        return;
    };
    let w = world();
    let now = 1_600_000_000;
    let items = ops::dispatch(&w.ctx, &w.admin, &msg, now);
    let _ = encode_response(version, now, &items).encode();
});
