//! A fault-injecting TCP proxy for the mirror tests: forwards 127.0.0.1:<port> to a target and
//! can pass traffic, delay every chunk, silently drop everything (a black hole: connections
//! stay open but nothing arrives), or cut (close every connection and refuse new ones) until
//! restored. Runs on its own thread and runtime so blocking test code does not stall it.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward as is.
    Pass,
    /// Forward each chunk after this delay.
    Delay(Duration),
    /// Swallow everything, keep connections open.
    Drop,
    /// Close every connection, refuse new ones.
    Cut,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    fault: watch::Sender<Fault>,
    stop: watch::Sender<bool>,
}

impl Proxy {
    /// Starts forwarding to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (fault, fault_rx) = watch::channel(Fault::Pass);
        let (stop, stop_rx) = watch::channel(false);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                accept_loop(listener, target, fault_rx, stop_rx).await;
            });
        });
        Proxy { addr, fault, stop }
    }

    /// Applies a fault (or `Fault::Pass` to restore).
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    fault: watch::Receiver<Fault>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (client, _) = tokio::select! {
            r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
            _ = stop.changed() => return,
        };
        if *fault.borrow() == Fault::Cut {
            drop(client);
            continue;
        }
        let (fault, stop) = (fault.clone(), stop.clone());
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::select! {
                _ = pump(cr, sw, fault.clone()) => {}
                _ = pump(sr, cw, fault.clone()) => {}
                _ = until_cut(fault) => {}
                _ = until_stop(stop) => {}
            }
        });
    }
}

async fn until_cut(mut fault: watch::Receiver<Fault>) {
    loop {
        if *fault.borrow_and_update() == Fault::Cut {
            return;
        }
        if fault.changed().await.is_err() {
            return;
        }
    }
}

async fn until_stop(mut stop: watch::Receiver<bool>) {
    let _ = stop.changed().await;
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    fault: watch::Receiver<Fault>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = *fault.borrow();
        match now {
            Fault::Pass => {}
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Drop => continue,
            Fault::Cut => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
