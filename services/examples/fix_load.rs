//! Load generator for `POST /api/v1/positions`: many gateways posting batches of fixes over
//! keep-alive HTTP/1.1 connections, as fast as the server acknowledges them. Used by
//! `tests/peer/ingest_vs_postgis.sh`; prints one JSON line of results.
//!
//! Every fix is distinct and plausible (each device moves a few metres a second, its time
//! always advancing), so the server stores every one: what is measured is durable ingest, not
//! the duplicate check. Bodies are built before the clock starts, so the generator's own JSON
//! work does not compete with the server for the machine's two cores.
//!
//! Devices prove themselves: with `--secrets-token` (an admin's or dispatcher's token) each
//! device's secret is minted first (`POST /api/v1/devices/{id}/secret`, before the clock
//! starts) and every fix carries it (`"device_id": "ID:SECRET"`).
//!
//! ```text
//! cargo run --release --example fix_load -- --addr 127.0.0.1:8080 --token sg_… \
//!     --secrets-token sg_… --devices 2000 --batch 5000 --conns 4 --fixes 2000000
//! ```
#![allow(clippy::unwrap_used, reason = "a benchmark tool: failing loudly is the right answer")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Args {
    addr: String,
    token: String,
    devices: usize,
    batch: usize,
    conns: usize,
    fixes: usize,
    prefix: String,
    secrets_token: String,
    /// Each device's secret, by device number (empty: none minted).
    secrets: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        token: String::new(),
        devices: 2_000,
        batch: 5_000,
        conns: 4,
        fixes: 1_000_000,
        prefix: "load-".into(),
        secrets_token: String::new(),
        secrets: Vec::new(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--addr" => a.addr = v,
            "--token" => a.token = v,
            "--devices" => a.devices = v.parse().unwrap(),
            "--batch" => a.batch = v.parse().unwrap(),
            "--conns" => a.conns = v.parse().unwrap(),
            "--fixes" => a.fixes = v.parse().unwrap(),
            "--prefix" => a.prefix = v,
            "--secrets-token" => a.secrets_token = v,
            other => panic!("unknown option {other}; see the header of services/examples/fix_load.rs"),
        }
    }
    a
}

/// The request bodies of one connection: its share of the devices, round robin.
fn bodies(a: &Args, conn: usize, t0_ms: i64) -> Vec<String> {
    let mine: Vec<usize> = (0..a.devices).filter(|d| d % a.conns == conn).collect();
    let per_conn = a.fixes / a.conns;
    let mut out = Vec::new();
    let mut seq = vec![0i64; mine.len()];
    let mut k = 0usize;
    let mut made = 0;
    while made < per_conn {
        let n = a.batch.min(per_conn - made);
        let mut s = String::with_capacity(n * 120 + 16);
        s.push_str("{\"fixes\":[");
        for i in 0..n {
            let slot = k % mine.len();
            k += 1;
            let d = mine[slot];
            let step = seq[slot];
            seq[slot] += 1;
            // Devices spread over Longgang; each walks east 1 m a second.
            let lon = 114.20 + (d % 50) as f64 * 0.002 + step as f64 * 0.00001;
            let lat = 22.68 + (d / 50) as f64 * 0.0005;
            if i > 0 {
                s.push(',');
            }
            let secret = a.secrets.get(d).map(|x| format!(":{x}")).unwrap_or_default();
            s.push_str(&format!(
                "{{\"device_id\":\"{}{d}{secret}\",\"time\":{},\"lon\":{lon:.6},\"lat\":{lat:.6},\"speed_mps\":1.0,\"accuracy_m\":5}}",
                a.prefix,
                t0_ms + step * 1000
            ));
        }
        s.push_str("]}");
        out.push(s);
        made += n;
    }
    out
}

/// Sends one batch on a keep-alive connection; returns the status and the body.
fn send(conn: &mut BufReader<TcpStream>, a: &Args, body: &str) -> (u16, String) {
    request(conn, &a.addr, "POST", "/api/v1/positions", &a.token, body)
}

/// Mints every device's secret (one keep-alive connection, before the clock starts).
fn mint_secrets(a: &Args) -> Vec<String> {
    let mut conn = BufReader::new(TcpStream::connect(&a.addr).unwrap());
    (0..a.devices)
        .map(|d| {
            let path = format!("/api/v1/devices/{}{d}/secret", a.prefix);
            let (status, reply) = request(&mut conn, &a.addr, "POST", &path, &a.secrets_token, "");
            assert_eq!(status, 201, "minting {path}: {reply}");
            let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
            v["secret"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// One request on a keep-alive connection; returns the status and the body.
fn request(
    conn: &mut BufReader<TcpStream>,
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let s = conn.get_mut();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap();
        }
    }
    let mut buf = vec![0; len];
    conn.read_exact(&mut buf).unwrap();
    (status, String::from_utf8_lossy(&buf).into_owned())
}

fn main() {
    let mut a = args();
    if !a.secrets_token.is_empty() {
        a.secrets = mint_secrets(&a);
    }
    let a = a;
    // A day ago, so that every fix is in the past and inside the retention window.
    let t0_ms =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64) - 86_400_000;
    let per_conn: Vec<Vec<String>> = (0..a.conns).map(|c| bodies(&a, c, t0_ms)).collect();
    let started = Instant::now();
    let results: Vec<(u64, u64, Vec<Duration>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = per_conn
            .iter()
            .map(|bodies| {
                let a = &a;
                scope.spawn(move || {
                    let mut conn = BufReader::new(TcpStream::connect(&a.addr).unwrap());
                    let (mut stored, mut refused_requests) = (0u64, 0u64);
                    let mut lat = Vec::with_capacity(bodies.len());
                    for body in bodies {
                        loop {
                            let t = Instant::now();
                            let (status, reply) = send(&mut conn, a, body);
                            lat.push(t.elapsed());
                            if status == 200 {
                                let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
                                stored += v["stored"].as_u64().unwrap();
                                break;
                            }
                            assert!(status == 503 || status == 429, "status {status}: {reply}");
                            refused_requests += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    (stored, refused_requests, lat)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let stored: u64 = results.iter().map(|r| r.0).sum();
    let overloaded: u64 = results.iter().map(|r| r.1).sum();
    let mut lat: Vec<Duration> = results.into_iter().flat_map(|r| r.2).collect();
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "fixes_stored": stored, "seconds": secs, "fixes_per_s": stored as f64 / secs,
            "requests": lat.len(), "overloaded_answers": overloaded,
            "p50_ms": q(0.5), "p99_ms": q(0.99), "batch": a.batch, "conns": a.conns, "devices": a.devices,
        })
    );
}
