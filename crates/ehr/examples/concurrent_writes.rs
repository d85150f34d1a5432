//! Concurrent writers against the FHIR API over HTTP (issue 10, item 3): bursts of parallel
//! `PUT /Patient/<new id>` while one client keeps reading a patient; prints the errors and the
//! latencies of writes and reads.
//!
//! ```text
//! cargo run -p ehr --example concurrent_writes -- sqlite:/tmp/bench.db [writers] [bursts]
//! cargo run -p ehr --example concurrent_writes -- postgres://postgres@127.0.0.1:5432/bench
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ehr::{ApiConfig, EhrState, Store};

/// One HTTP/1.1 request; returns the status code and how long it took.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> std::io::Result<(u16, Duration)> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/fhir+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let status = std::str::from_utf8(&response[..response.len().min(12)])
        .ok()
        .and_then(|line| line.get(9..12))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, start.elapsed()))
}

fn patient(id: &str) -> String {
    serde_json::json!({"resourceType": "Patient", "id": id, "name": [{"family": id}],
        "gender": "female", "birthDate": "1970-01-01"})
    .to_string()
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut times: Vec<Duration>) -> String {
    if times.is_empty() {
        return "n=0".to_string();
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} p50={:.1} ms p95={:.1} ms max={:.1} ms",
        times.len(),
        millis(at(0.5)),
        millis(at(0.95)),
        millis(at(1.0))
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let db = args
        .next()
        .context("usage: concurrent_writes DATABASE_URL [writers] [bursts]")?;
    let writers: usize = args.next().map_or(Ok(20), |s| s.parse())?;
    let bursts: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let store = Store::open(&db).await?;
    let run = format!("{:x}", rand::random::<u32>());
    let token = store
        .create_token(&format!("bench-{run}"), "user/*.*", None, None)
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = EhrState::new(store.clone(), ApiConfig::default());
    tokio::spawn(ehr::serve(state, listener, std::future::pending()));

    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let seed = format!("seed-{run}");
        request(
            addr,
            "PUT",
            &format!("/Patient/{seed}"),
            &token,
            &patient(&seed),
        )?;
        let (mut writes, mut reads, mut errors) = (Vec::new(), Vec::new(), 0);
        let wall = Instant::now();
        for burst in 0..bursts {
            let done = Arc::new(AtomicBool::new(false));
            let reader = {
                let (done, token, seed) = (done.clone(), token.clone(), seed.clone());
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    while !done.load(Ordering::Relaxed) {
                        out.push(request(
                            addr,
                            "GET",
                            &format!("/Patient/{seed}"),
                            &token,
                            "",
                        ));
                    }
                    out
                })
            };
            let threads: Vec<_> = (0..writers)
                .map(|n| {
                    let token = token.clone();
                    let id = format!("{run}-{burst}-{n}");
                    std::thread::spawn(move || {
                        request(
                            addr,
                            "PUT",
                            &format!("/Patient/{id}"),
                            &token,
                            &patient(&id),
                        )
                    })
                })
                .collect();
            for thread in threads {
                match thread.join().expect("writer thread") {
                    Ok((201, time)) => writes.push(time),
                    Ok((status, _)) => {
                        errors += 1;
                        eprintln!("write answered {status}");
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("write failed: {e}");
                    }
                }
            }
            done.store(true, Ordering::Relaxed);
            for read in reader.join().expect("reader thread") {
                match read {
                    Ok((200, time)) => reads.push(time),
                    Ok((status, _)) => {
                        errors += 1;
                        eprintln!("read answered {status}");
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("read failed: {e}");
                    }
                }
            }
        }
        println!(
            "{} bursts of {writers} concurrent PUTs in {:.2} s, {errors} errors",
            bursts,
            wall.elapsed().as_secs_f64()
        );
        println!("  writes: {}", summary(writes));
        println!("  reads during the bursts: {}", summary(reads));
        Ok(())
    })
    .await?;
    store.close().await;
    result
}
