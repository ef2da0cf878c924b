//! The private PostgreSQL the PostgreSQL store's tests run against (`support::postgres`): it
//! starts from Debian's binaries as an unprivileged user, serves a database per test, and is
//! reachable on loopback only.

use crate::support::postgres;

#[test]
fn the_test_postgres_runs_unprivileged_and_gives_each_test_its_own_database() {
    let Some(server) = postgres::server() else {
        return;
    };
    assert!(postgres::bin_dir().is_some());
    let (a, b) = (postgres::database().unwrap(), postgres::database().unwrap());
    assert_ne!(a.name, b.name);
    let mut client = ::postgres::Client::connect(&a.url, ::postgres::NoTls).unwrap();
    let row = client
        .query_one("SELECT current_user::text, current_database()::text", &[])
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "akm");
    assert_eq!(row.get::<_, String>(1), a.name);
    // The server process is not root's: PostgreSQL refuses root, and tests run as root in CI.
    let pid = std::fs::read_to_string(server.dir.join("data/postmaster.pid")).unwrap();
    let pid = pid.lines().next().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    assert_ne!(uid, "0", "the test PostgreSQL runs as root");
    // Loopback only: the server is not listening on every address.
    let listen: String = client
        .query_one("SHOW listen_addresses", &[])
        .unwrap()
        .get(0);
    assert_eq!(listen, "127.0.0.1");
    assert!(server.port > 0);
    assert!(server.ca_file.exists());
    let ssl: String = client.query_one("SHOW ssl", &[]).unwrap().get(0);
    assert_eq!(ssl, "on");
}
