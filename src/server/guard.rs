//! Whole, well-formed frontend messages only: the bytes a client sends are
//! framed and checked here before pgwire's decoder sees them.
//!
//! pgwire 0.41's decoder reads each message body from the connection's
//! whole read buffer with `bytes`' panicking getters, and trusts lengths:
//! a Parse, Bind, Execute, Close or Describe whose body is shorter than its
//! fields (with nothing after it in the buffer yet), a CopyData or password
//! message with a length below 4, or a Bind value length beyond the buffer
//! panics in the decoder (the inputs are listed in ARCHITECTURE.md, "Client
//! input is bounded"). [`Guarded`] sits between
//! the socket and pgwire's framing and passes bytes through one complete
//! message at a time, each checked against its type's layout — every field
//! present, lengths inside the message, nothing left over — so the decoder
//! only ever reads inside a message it can decode. A message that fails
//! ends the connection with FATAL 08P01, as PostgreSQL answers a protocol
//! violation.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest message after startup (a Query, Parse or Bind, or CopyData):
/// PostgreSQL allows 1 GiB; a read-only federation has no use for more
/// than this, and each byte of SQL costs several in the parser.
pub const MAX_MESSAGE: usize = 64 << 20;
/// The longest of the other messages (Sync, Describe, password, ...), as
/// pgwire's own limit.
const MAX_SMALL_MESSAGE: usize = 10_000;
/// The startup packet (and SSLRequest, CancelRequest) limit, as pgwire's
/// and PostgreSQL's.
const MAX_STARTUP: usize = 10_000;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;

/// Where the connection is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Untyped packets: the startup packet (or a CancelRequest).
    Startup,
    /// Typed messages.
    Messages,
}

/// A checked view of a message body.
struct Body<'a> {
    rest: &'a [u8],
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.rest.len() < n {
            return Err("insufficient data left in message");
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<usize, &'static str> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn i32(&mut self) -> Result<i32, &'static str> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn cstring(&mut self) -> Result<(), &'static str> {
        let end = self
            .rest
            .iter()
            .position(|b| *b == 0)
            .ok_or("invalid string in message")?;
        self.take(end + 1).map(|_| ())
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err("invalid message format")
        }
    }
}

/// Checks the body of a typed message against its layout.
fn check_message(tag: u8, body: &[u8]) -> Result<(), &'static str> {
    let mut b = Body { rest: body };
    match tag {
        // Query, CopyFail: one string.
        b'Q' | b'f' => b.cstring()?,
        // Parse: name, query, parameter type oids.
        b'P' => {
            b.cstring()?;
            b.cstring()?;
            let n = b.u16()?;
            b.take(n.saturating_mul(4))?;
        }
        // Bind: portal, statement, formats, values, result formats.
        b'B' => {
            b.cstring()?;
            b.cstring()?;
            let formats = b.u16()?;
            b.take(formats.saturating_mul(2))?;
            let values = b.u16()?;
            for _ in 0..values {
                let len = b.i32()?;
                if len >= 0 {
                    b.take(usize::try_from(len).map_err(|_| "invalid message format")?)?;
                } else if len != -1 {
                    return Err("invalid message format");
                }
            }
            let results = b.u16()?;
            b.take(results.saturating_mul(2))?;
        }
        // Describe, Close: kind and name.
        b'D' | b'C' => {
            b.take(1)?;
            b.cstring()?;
        }
        // Execute: portal and row limit.
        b'E' => {
            b.cstring()?;
            b.i32()?;
        }
        // Sync, Flush, Terminate, CopyDone: nothing.
        b'S' | b'H' | b'X' | b'c' => {}
        // CopyData, and the password message family (SASL bodies are read
        // by tautan's startup handler, which checks them itself).
        b'd' | b'p' => return Ok(()),
        _ => return Err("invalid frontend message type"),
    }
    b.end()
}

/// Checks an untyped startup-phase packet (length included in `packet`).
/// Returns whether it was the startup packet (after which messages are
/// typed).
fn check_startup(packet: &[u8]) -> Result<bool, &'static str> {
    let code = packet
        .get(4..8)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .ok_or("invalid length of startup packet")?;
    match code {
        CANCEL_REQUEST_CODE => {
            // pid, then a secret key of 4 to 256 bytes.
            if !(16..=268).contains(&packet.len()) {
                return Err("invalid length of cancel request");
            }
            Ok(false)
        }
        SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => {
            // Negotiated (once) before this point; pgwire refuses another.
            if packet.len() != 8 {
                return Err("invalid length of startup packet");
            }
            Ok(false)
        }
        _ => {
            // version, then name/value strings, then a terminating NUL.
            let mut b = Body {
                rest: packet.get(8..).ok_or("invalid length of startup packet")?,
            };
            loop {
                match b.rest.first() {
                    None => {
                        return Err(
                            "invalid startup packet layout: expected terminator as last byte",
                        )
                    }
                    Some(0) => {
                        b.take(1)?;
                        break;
                    }
                    Some(_) => {
                        b.cstring()?;
                        b.cstring().map_err(|_| {
                            "invalid startup packet layout: expected terminator as last byte"
                        })?;
                    }
                }
            }
            b.end()
                .map_err(|_| "invalid startup packet layout: expected terminator as last byte")?;
            Ok(true)
        }
    }
}

/// A socket whose reads yield only complete, checked frontend messages.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    phase: Phase,
    /// Bytes read from the socket, not yet a complete message.
    pending: BytesMut,
    /// Checked bytes not yet handed to pgwire.
    ready: BytesMut,
    /// Why the stream was cut, once it was.
    failed: Option<String>,
    /// The socket reached its end.
    eof: bool,
}

impl<S> Guarded<S> {
    /// Wraps `inner`; `already_read` are bytes pgwire read from it during
    /// TLS negotiation (the start of the startup packet).
    pub fn new(inner: S, already_read: BytesMut) -> Self {
        let mut guarded = Self {
            inner,
            phase: Phase::Startup,
            pending: already_read,
            ready: BytesMut::new(),
            failed: None,
            eof: false,
        };
        guarded.frame();
        guarded
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Moves every complete, valid message from `pending` to `ready`; on
    /// an invalid one, records why and stops.
    fn frame(&mut self) {
        while self.failed.is_none() {
            let (header, limit) = match self.phase {
                Phase::Startup => (0, MAX_STARTUP),
                Phase::Messages => {
                    let limit = match self.pending.first() {
                        None => return,
                        Some(b'Q' | b'P' | b'B' | b'd') => MAX_MESSAGE,
                        Some(_) => MAX_SMALL_MESSAGE,
                    };
                    (1, limit)
                }
            };
            let Some(len) = self
                .pending
                .get(header..header + 4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            else {
                return;
            };
            let minimum = if header == 0 { 8 } else { 4 };
            let len = match usize::try_from(len) {
                Ok(n) if (minimum..=limit).contains(&n) => n,
                _ => {
                    self.failed = Some("invalid message length".into());
                    return;
                }
            };
            let total = header + len;
            if self.pending.len() < total {
                // Ask for the whole message at once.
                self.pending.reserve(total - self.pending.len());
                return;
            }
            let message = &self.pending[..total];
            let checked = match self.phase {
                Phase::Startup => check_startup(message).map(|startup| {
                    if startup {
                        self.phase = Phase::Messages;
                    }
                }),
                Phase::Messages => check_message(message[0], &message[5..]),
            };
            match checked {
                Ok(()) => {
                    let message = self.pending.split_to(total);
                    self.ready.extend_from_slice(&message);
                }
                Err(e) => {
                    // PostgreSQL's wording names the type.
                    self.failed = Some(match self.pending.first() {
                        Some(t) if e == "invalid frontend message type" => format!("{e} {t}"),
                        _ => e.to_string(),
                    });
                    return;
                }
            }
        }
    }
}

/// The error a guarded read ends with; the connection loop answers it with
/// FATAL 08P01 and closes.
#[derive(Debug)]
pub struct ProtocolViolation(pub String);

impl std::fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolViolation {}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(reason) = &this.failed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    ProtocolViolation(reason.clone()),
                )));
            }
            if this.eof {
                // Bytes of an incomplete message are dropped with the
                // connection, as PostgreSQL does.
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let filled = read.filled();
                    if filled.is_empty() {
                        this.eof = true;
                    } else {
                        this.pending.extend_from_slice(filled);
                        this.frame();
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn startup() -> Vec<u8> {
        let body = b"\x00\x03\x00\x00user\0u\0\0";
        let mut m = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    fn run(bytes: &[u8]) -> (Vec<u8>, Option<String>) {
        let mut g = Guarded::new((), BytesMut::from(bytes));
        g.frame();
        (g.ready.to_vec(), g.failed)
    }

    #[test]
    fn whole_valid_messages_pass() {
        let mut input = startup();
        input.extend(typed(b'Q', b"SELECT 1\0"));
        input.extend(typed(b'P', b"\0SELECT $1\0\x00\x01\x00\x00\x00\x17"));
        input.extend(typed(
            b'B',
            b"\0\0\x00\x01\x00\x01\x00\x02\x00\x00\x00\x01A\xff\xff\xff\xff\x00\x00",
        ));
        input.extend(typed(b'E', b"\0\0\0\0\0"));
        input.extend(typed(b'S', b""));
        let (ready, failed) = run(&input);
        assert_eq!(failed, None);
        assert_eq!(ready, input);
        // A message cut short waits for the rest.
        let (ready, failed) = run(&input[..input.len() - 2]);
        assert_eq!(failed, None);
        assert!(ready.len() < input.len() - 2);
    }

    #[test]
    fn what_panicked_pgwire_is_refused() {
        for (tag, body) in [
            // Parse with nothing after the name: `get_u16` on an empty buffer.
            (b'P', &b""[..]),
            (b'P', &b"\0SELECT 1\0\x00\x05\x00\x00\x00\x17"[..]),
            // Bind with a value longer than the message.
            (b'B', &b"\0\0\x00\x00\x00\x01\x00\x00\x10\x00ab\x00\x00"[..]),
            (b'B', &b"\0\0\x00\x00\x00\x01\xff\xff\xff\xfe\x00\x00"[..]),
            (b'E', &b"\0"[..]),
            (b'D', &b""[..]),
            (b'C', &b""[..]),
            (b'S', &b"x"[..]),
            (b'Q', &b"no terminator"[..]),
            (b'Q', &b"SELECT 1\0trailing"[..]),
            (b'Z', &b""[..]),
        ] {
            let mut input = startup();
            input.extend(typed(tag, body));
            let (_, failed) = run(&input);
            assert!(failed.is_some(), "{} {body:?}", tag as char);
        }
        // Lengths below 4 (CopyData: `len - 4` underflowed) and above the
        // limits.
        for len in [0i32, 3, -1, (MAX_MESSAGE + 1) as i32] {
            let mut input = startup();
            input.push(b'd');
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(&[0; 8]);
            let (_, failed) = run(&input);
            assert_eq!(failed.as_deref(), Some("invalid message length"), "{len}");
        }
    }

    #[test]
    fn startup_packets_are_checked() {
        let (_, failed) = run(&startup());
        assert_eq!(failed, None);
        for packet in [
            // Too short, too long, no terminator, junk after it.
            vec![0, 0, 0, 4],
            20_000i32.to_be_bytes().to_vec(),
            b"\x00\x00\x00\x0d\x00\x03\x00\x00user\0".to_vec(),
            b"\x00\x00\x00\x0e\x00\x03\x00\x00a\0b\0\0x".to_vec(),
            // A cancel request with a 300-byte key.
            [
                &316i32.to_be_bytes()[..],
                &80_877_102u32.to_be_bytes(),
                &[0; 308],
            ]
            .concat(),
        ] {
            let (_, failed) = run(&packet);
            assert!(failed.is_some(), "{packet:?}");
        }
        let mut cancel = 16i32.to_be_bytes().to_vec();
        cancel.extend_from_slice(&80_877_102u32.to_be_bytes());
        cancel.extend_from_slice(&[0; 8]);
        let (ready, failed) = run(&cancel);
        assert_eq!((ready, failed), (cancel, None));
    }
}
