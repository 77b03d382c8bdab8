//! A minimal HTTP/1.1 client over one keep-alive connection, for the
//! benchmarks: it adds nothing but a socket round trip to what is measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

/// A response: status, headers (names in lower case), body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

pub struct Conn {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// GETs `path`; returns the status and body.
    pub fn get(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        self.get_with(path, "")
    }

    /// GETs `path` with extra header lines (each ending in `\r\n`).
    pub fn get_with(&mut self, path: &str, headers: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n{headers}\r\n",
            self.addr
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        self.response()
    }

    /// POSTs a JSON body to `path` with extra header lines.
    pub fn post_json(
        &mut self,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n",
            self.addr,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(request.as_bytes())?;
        stream.write_all(body)?;
        self.response()
    }

    /// Sends any request; returns the status, the headers (names in
    /// lower case) and the body.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{headers}\r\n",
            self.addr,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(request.as_bytes())?;
        stream.write_all(body)?;
        self.response_with_headers()
    }

    fn response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        let (status, _, body) = self.response_with_headers()?;
        Ok((status, body))
    }

    fn response_with_headers(&mut self) -> anyhow::Result<Answer> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    length = v.trim().parse::<usize>().ok();
                } else if k == "transfer-encoding" && v.trim().eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
                headers.push((k, v.trim().to_string()));
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).context("bad chunk size")?;
                if size == 0 {
                    line.clear();
                    self.reader.read_line(&mut line)?;
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                line.clear();
                self.reader.read_line(&mut line)?;
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.reader.read_exact(&mut body)?;
        } else if (300..400).contains(&status) || status == 204 {
            // A redirect or no content without a length has no body.
        } else {
            bail!("response without length");
        }
        Ok((status, headers, body))
    }
}
