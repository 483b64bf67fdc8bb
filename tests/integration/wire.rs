//! A raw PostgreSQL protocol client, for what drivers never send: Bind
//! messages that do not fit their statement, truncated and malformed
//! messages, logins abandoned half way.

use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for the server's next message.
pub const WAIT: Duration = Duration::from_secs(20);

/// One backend message: type byte and body.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// A field of an ErrorResponse/NoticeResponse (`b'C'` SQLSTATE,
    /// `b'M'` message, `b'S'` severity, `b'H'` hint).
    pub fn field(&self, code: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&c, tail)) = rest.split_first() {
            if c == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0)?;
            if c == code {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }

    /// The SQLSTATE of an ErrorResponse.
    pub fn sqlstate(&self) -> Option<String> {
        (self.tag == b'E').then(|| self.field(b'C')).flatten()
    }
}

/// A frontend message: type byte, length, body.
pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A NUL-terminated string.
pub fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Parse: statement name, query, parameter type oids.
pub fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(sql));
    b.extend_from_slice(&(types.len() as u16).to_be_bytes());
    for t in types {
        b.extend_from_slice(&t.to_be_bytes());
    }
    msg(b'P', &b)
}

/// Bind: portal, statement, parameter formats, values (None = NULL),
/// result formats.
pub fn bind(
    portal: &str,
    statement: &str,
    formats: &[i16],
    values: &[Option<&[u8]>],
    result_formats: &[i16],
) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(statement));
    b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
    for f in formats {
        b.extend_from_slice(&f.to_be_bytes());
    }
    b.extend_from_slice(&(values.len() as u16).to_be_bytes());
    for v in values {
        match v {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b.extend_from_slice(&(result_formats.len() as u16).to_be_bytes());
    for f in result_formats {
        b.extend_from_slice(&f.to_be_bytes());
    }
    msg(b'B', &b)
}

pub fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend_from_slice(&0i32.to_be_bytes());
    msg(b'E', &b)
}

pub fn sync() -> Vec<u8> {
    msg(b'S', &[])
}

pub fn query(sql: &str) -> Vec<u8> {
    msg(b'Q', &cstr(sql))
}

/// A startup packet for protocol 3.0 with these parameters.
pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend(cstr(k));
        body.extend(cstr(v));
    }
    body.push(0);
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// A raw connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub async fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let _ = stream.set_nodelay(true);
        Raw {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Connects and logs in with SCRAM-SHA-256; returns after the first
    /// ReadyForQuery.
    pub async fn login(port: u16, (user, password): (&str, &str)) -> Raw {
        let mut raw = Raw::connect(port).await;
        let first = raw.scram_start(user, password).await;
        let (mut scram, _) = first.expect("SCRAM offered");
        raw.send(&sasl_response(scram.message())).await;
        let m = raw.next().await.expect("server-final");
        assert_eq!(m.tag, b'R', "{:?}", m.sqlstate());
        let body = &m.body[4..];
        scram.finish(body).expect("server signature");
        loop {
            let m = raw.next().await.expect("login completes");
            assert_ne!(m.tag, b'E', "login failed: {:?}", m.field(b'M'));
            if m.tag == b'Z' {
                return raw;
            }
        }
    }

    /// Startup and client-first; returns the SCRAM state after the
    /// server-first message (and that message), or None if the server
    /// answered otherwise.
    pub async fn scram_start(
        &mut self,
        user: &str,
        password: &str,
    ) -> Option<(ScramSha256, String)> {
        self.send(&startup(&[("user", user), ("database", "tautan")]))
            .await;
        let m = self.next().await?;
        if m.tag != b'R' || m.body.get(..4) != Some(&10i32.to_be_bytes()[..]) {
            return None;
        }
        let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
        let mut body = cstr("SCRAM-SHA-256");
        body.extend_from_slice(&(scram.message().len() as i32).to_be_bytes());
        body.extend_from_slice(scram.message());
        self.send(&msg(b'p', &body)).await;
        let m = self.next().await?;
        if m.tag != b'R' || m.body.get(..4) != Some(&11i32.to_be_bytes()[..]) {
            return None;
        }
        let server_first = m.body[4..].to_vec();
        scram.update(&server_first).ok()?;
        Some((scram, String::from_utf8_lossy(&server_first).into_owned()))
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        // A server that closed the connection is seen by the next read.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next backend message; None at end of stream or after [`WAIT`].
    pub async fn next(&mut self) -> Option<Msg> {
        self.next_within(WAIT).await
    }

    pub async fn next_within(&mut self, wait: Duration) -> Option<Msg> {
        loop {
            if self.buf.len() >= 5 {
                let len = (&self.buf[1..5]).get_i32();
                let len = usize::try_from(len).ok()?;
                if self.buf.len() > len {
                    let tag = self.buf[0];
                    self.buf.advance(5);
                    let body = self.buf.split_to(len.saturating_sub(4)).to_vec();
                    return Some(Msg { tag, body });
                }
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(wait, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.put_slice(&chunk[..n]);
        }
    }

    /// Messages up to and including ReadyForQuery (or until the stream ends).
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Some(m) = self.next().await {
            let ready = m.tag == b'Z';
            out.push(m);
            if ready {
                break;
            }
        }
        out
    }
}

/// SASLResponse.
pub fn sasl_response(data: &[u8]) -> Vec<u8> {
    msg(b'p', data)
}

/// The SQLSTATE of the first ErrorResponse among `msgs`.
pub fn first_error(msgs: &[Msg]) -> Option<String> {
    msgs.iter().find_map(Msg::sqlstate)
}
