//! A small fault-injecting TCP proxy for federation tests: it forwards
//! connections to a target and cuts many of them after a random number of
//! bytes, so batches and receipts are lost mid-flight.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A running proxy; stops accepting when dropped.
pub struct FaultyProxy {
    /// `127.0.0.1:PORT` to connect to instead of the target.
    pub address: String,
    /// Connections cut so far.
    pub cuts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FaultyProxy {
    /// Forwards to `target`; of every four connections three are cut after
    /// 0–20,000 bytes from the client (seeded, so runs are repeatable).
    pub fn start(target: &str, seed: u64) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (stop, cuts) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let target = target.to_string();
        let (stopping, counting) = (stop.clone(), cuts.clone());
        std::thread::spawn(move || {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let mut count = 0u64;
            while !stopping.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                count += 1;
                let budget = if count % 4 == 0 { None } else { Some(next() % 20_000) };
                let Ok(server) = TcpStream::connect(&target) else { continue };
                client.set_nonblocking(false).unwrap();
                let counting = counting.clone();
                std::thread::spawn(move || relay(client, server, budget, &counting));
            }
        });
        FaultyProxy { address, cuts, stop }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn relay(client: TcpStream, server: TcpStream, budget: Option<u64>, cuts: &AtomicU64) {
    let (mut client_in, mut server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut server_in, mut client_out) = (server, client);
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_in, &mut client_out);
        let _ = client_out.shutdown(Shutdown::Both);
    });
    let mut sent = 0u64;
    let mut buffer = [0u8; 4096];
    loop {
        let read = match client_in.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if let Some(budget) = budget {
            if sent + read as u64 > budget {
                let keep = (budget - sent) as usize;
                let _ = server_out.write_all(&buffer[..keep]);
                cuts.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        if server_out.write_all(&buffer[..read]).is_err() {
            break;
        }
        sent += read as u64;
    }
    let _ = server_out.shutdown(Shutdown::Both);
    let _ = client_in.shutdown(Shutdown::Both);
    let _ = back.join();
}
