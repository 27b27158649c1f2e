//! A local SMTP server that accepts every message and keeps it: the e-mail end of Alertmanager's ticket route in
//! the tests. Plain SMTP (RFC 5321) on loopback, one connection at a time, no TLS and no AUTH offered (so
//! Alertmanager neither starts TLS nor logs in). It decodes what tests check: the headers (unfolded) and the
//! text of the message with quoted-printable soft breaks and escapes undone.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::StackError;

/// One message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// `MAIL FROM:` address.
    pub from: String,
    /// `RCPT TO:` addresses.
    pub to: Vec<String>,
    /// The message (headers and body) as sent, dot-stuffing undone.
    pub data: String,
}

impl Mail {
    /// The value of header `name` (case-insensitive), unfolded; `None` if absent.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The whole message with quoted-printable encoding undone (`=\r\n` soft breaks removed, `=XX` decoded):
    /// good enough to search the text parts for what a notification says.
    pub fn decoded(&self) -> String {
        let bytes = self.data.replace("=\r\n", "").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The server; stopped when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts it on a free loopback port.
    pub fn start() -> Result<SmtpSink, StackError> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(StackError::io("binding the SMTP sink"))?;
        let addr = listener
            .local_addr()
            .map_err(StackError::io("reading the SMTP sink's address"))?;
        let mails = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (mails.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("smtp-sink".into())
            .spawn(move || accept_loop(&listener, &m, &s))
            .map_err(StackError::io("starting the SMTP sink's thread"))?;
        Ok(SmtpSink {
            addr,
            mails,
            stop,
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:<port>`: Alertmanager's `smtp_smarthost`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Every message received so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The accept loop blocks in accept(): one connection wakes it to see the stop flag. If that connection
        // fails the listener is gone already and the loop has ended.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, mails: &Mutex<Vec<Mail>>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // A broken conversation (or a failed accept) loses that message only; the client sees the error.
        if let Ok(mail) = stream.and_then(converse) {
            mails.lock().unwrap_or_else(|p| p.into_inner()).extend(mail);
        }
    }
}

/// One SMTP session: greeting, EHLO/HELO, then any number of MAIL/RCPT/DATA transactions until QUIT.
fn converse(stream: TcpStream) -> std::io::Result<Vec<Mail>> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    let mut mails = Vec::new();
    let (mut from, mut to) = (String::new(), Vec::new());
    out.write_all(b"220 127.0.0.1 smtp-sink ready\r\n")?;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line)? == 0 {
            return Ok(mails);
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let arg = |prefix: &str| {
            line.get(prefix.len()..)
                .unwrap_or("")
                .trim()
                .trim_matches(['<', '>'])
                .to_owned()
        };
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-127.0.0.1\r\n250 8BITMIME\r\n",
            "HELO" | "RSET" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                from = arg("MAIL FROM:");
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(arg("RCPT TO:"));
                b"250 OK\r\n"
            }
            "DATA" => {
                out.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l)? == 0 || l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    // Dot-stuffing (RFC 5321 4.5.2): a leading dot was doubled by the client.
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                mails.push(Mail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(mails);
            }
            _ => b"502 command not implemented\r\n",
        };
        out.write_all(reply)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn send(addr: &str, script: &[&str]) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        for line in script {
            s.write_all(line.as_bytes()).expect("write");
        }
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    }

    #[test]
    fn a_message_is_kept_with_its_envelope_headers_and_decoded_text() {
        let sink = SmtpSink::start().expect("starts");
        let reply = send(
            &sink.addr(),
            &[
                "EHLO test\r\n",
                "MAIL FROM:<a@example.org>\r\n",
                "RCPT TO:<b@example.org>\r\n",
                "DATA\r\n",
                "Subject: [error] JobsFailing:\r\n two lines\r\n\r\n",
                "..leading dot; runbook=3Dyes, soft=\r\nbreak\r\n.\r\n",
                "QUIT\r\n",
            ],
        );
        assert!(reply.starts_with("220 "), "{reply}");
        assert!(reply.contains("250 OK queued"), "{reply}");
        assert!(
            !reply.contains("AUTH") && !reply.contains("STARTTLS"),
            "{reply}"
        );
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        let m = &mails[0];
        assert_eq!(m.from, "a@example.org");
        assert_eq!(m.to, vec!["b@example.org".to_owned()]);
        assert_eq!(
            m.header("subject").as_deref(),
            Some("[error] JobsFailing: two lines")
        );
        assert!(
            m.decoded().contains(".leading dot; runbook=yes, softbreak"),
            "{}",
            m.decoded()
        );
    }

    #[test]
    fn an_unknown_command_is_refused_and_the_session_goes_on() {
        let sink = SmtpSink::start().expect("starts");
        let reply = send(
            &sink.addr(),
            &["HELO x\r\n", "AUTH PLAIN x\r\n", "QUIT\r\n"],
        );
        assert!(reply.contains("502 "), "{reply}");
        assert!(reply.contains("221 "), "{reply}");
        assert!(sink.mails().is_empty());
    }
}
