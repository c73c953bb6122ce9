//! The real `safegrid` binary as a child process: run a command, serve on a free port, and a
//! minimal HTTP client. Used by the restart and browser tests.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use safegrid_geodata::grid::unit_to_feature;

pub const BIN: &str = env!("CARGO_BIN_EXE_safegrid");

pub fn safegrid(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(["--database-url", url]).args(args).output().expect("run safegrid")
}

/// Starts `safegrid serve` on a free port; returns the child and its address.
pub fn serve(url: &str) -> (Child, String) {
    serve_with(url, &[])
}

/// [`serve`] with more `serve` options (`--basemap FILE`, say).
pub fn serve_with(url: &str, extra: &[&str]) -> (Child, String) {
    let (child, addr, _) = serve_tracking(url, extra);
    (child, addr)
}

/// [`serve_with`], also returning the address of the OsmAnd port (a free one).
pub fn serve_tracking(url: &str, extra: &[&str]) -> (Child, String, String) {
    let mut child = Command::new(BIN)
        .args([
            "--database-url",
            url,
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-reload-secs",
            "1",
            "--osmand-listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn safegrid serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut osmand = String::new();
    let addr = loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["fields"]["message"] == "OsmAnd trackers report here" {
            v["fields"]["addr"].as_str().unwrap().clone_into(&mut osmand);
        }
        if v["fields"]["message"] == "listening" {
            break v["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr, osmand)
}

/// A minimal HTTP/1.1 client: one request per connection; an empty token sends no
/// Authorization header (a tracker or a citizen), since an empty bearer token is refused 401.
pub fn http(addr: &str, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let (_, payload) = resp.split_once("\r\n\r\n").unwrap();
    // Small bodies arrive in one piece; a chunked one is "len\r\njson\r\n0\r\n\r\n".
    let json_text = if payload.starts_with('{') || payload.is_empty() {
        payload.to_owned()
    } else {
        payload.split("\r\n").nth(1).unwrap_or("").to_owned()
    };
    (status, serde_json::from_str(&json_text).unwrap_or(Value::Null))
}

/// [`http`], returning the body as text whatever its size (de-chunked when chunked).
pub fn http_text(addr: &str, path: &str, token: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8(resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let (head, mut payload) = resp.split_once("\r\n\r\n").unwrap();
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return (status, payload.to_owned());
    }
    let mut body = String::new();
    loop {
        let (size, chunk) = payload.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        body.push_str(&chunk[..n]);
        payload = &chunk[n + 2..];
    }
    (status, body)
}

pub fn write_fixture_grids(path: &Path) {
    let fc = geojson::FeatureCollection {
        bbox: None,
        features: super::fixture_grids().units().iter().map(unit_to_feature).collect(),
        foreign_members: None,
    };
    std::fs::write(path, fc.to_string()).unwrap();
}
