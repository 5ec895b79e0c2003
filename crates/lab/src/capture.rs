//! Packet capture with tshark inside a namespace; frames come back both as raw bytes
//! (parsed from the pcap file by us) and as tshark's independent decoding.
//!
//! Needs `tshark` (Debian package `tshark`) on the PATH.

use std::io::{self, BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ns::{Netns, Scratch, command_failed, context};

/// One captured frame.
#[derive(Debug, Clone)]
pub struct CapturedPacket {
    /// Capture time, seconds since the Unix epoch.
    pub time: f64,
    /// The whole Ethernet frame as captured.
    pub bytes: Vec<u8>,
    pub eth_src: String,
    pub eth_dst: String,
    /// Outer IPv4/IPv6 source/destination, if any.
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// IPv4 TTL or IPv6 hop limit of the outer header.
    pub ttl: Option<u8>,
    /// tshark's protocol column (`VRRP`, `ARP`, `ICMPv6`, ...).
    pub proto: String,
    /// tshark's info column.
    pub summary: String,
}

/// A running tshark; [`Capture::stop`] ends it and returns the frames.
pub struct Capture {
    child: Option<Child>,
    pcap: PathBuf,
    dir: Scratch,
    stopped: bool,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("pcap", &self.pcap)
            .field("running", &self.child.is_some())
            .finish()
    }
}

const FIELDS: &[&str] = &[
    "frame.time_epoch",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "ip.ttl",
    "ipv6.hlim",
    "_ws.col.Protocol",
    "_ws.col.Info",
];
/// Wireshark >= 4.2 spells the column fields in lower case.
const FIELDS_NEW: &[&str] = &["_ws.col.protocol", "_ws.col.info"];

impl Capture {
    /// Starts `tshark -i IFACE -f FILTER` (a capture/BPF filter such as
    /// `"vrrp or arp or icmp6"`, empty for everything) inside `ns`, and returns once
    /// tshark reports that it captures. Err if tshark cannot be started or does not
    /// start capturing within 10 s (with what it printed).
    pub fn start(ns: &Netns, iface: &str, filter: &str) -> io::Result<Capture> {
        let dir = Scratch::new("capture")?;
        let pcap = dir.path().join("cap.pcap");
        let mut args = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            ns.name().to_owned(),
            "tshark".to_owned(),
            "-n".to_owned(),
            "-q".to_owned(),
            "-i".to_owned(),
            iface.to_owned(),
            "-F".to_owned(),
            "pcap".to_owned(),
            "-w".to_owned(),
            pcap.display().to_string(),
        ];
        if !filter.is_empty() {
            args.push("-f".to_owned());
            args.push(filter.to_owned());
        }
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                context(
                    e,
                    format_args!(
                        "cannot start tshark on {iface} in netns {} (is it installed?)",
                        ns.name()
                    ),
                )
            })?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("tshark: stderr not captured"));
        };
        let (tx, rx) = mpsc::channel::<String>();
        let drain = std::thread::Builder::new()
            .name("tshark-stderr".to_owned())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        // Receiver gone; keep draining so tshark never blocks on stderr.
                    }
                }
            });
        if let Err(e) = drain {
            let _ = child.kill();
            let _ = child.wait();
            return Err(context(e, "spawn the tshark stderr reader"));
        }
        let mut deadline = Instant::now() + Duration::from_secs(10);
        let mut capturing_on = false;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    // tshark 4 prints "Capturing on 'IF'" then, once dumpcap really
                    // captures, "-- Capture started."; older ones only the former.
                    if line.contains("Capture started") {
                        break;
                    }
                    if line.contains("Capturing on") {
                        capturing_on = true;
                        let soon = Instant::now() + Duration::from_millis(1500);
                        if soon < deadline {
                            deadline = soon;
                        }
                    }
                    seen.push(line);
                }
                // Still running after "Capturing on" and a quiet while: it captures.
                Err(mpsc::RecvTimeoutError::Timeout)
                    if capturing_on && matches!(child.try_wait(), Ok(None)) =>
                {
                    break;
                }
                // Timed out before that, or tshark exited (stderr closed), e.g. on a
                // missing interface: it prints "Capturing on" and then the error.
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "tshark did not start capturing on {iface} in netns {} ({}): {}",
                            ns.name(),
                            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                            seen.join("\n")
                        ),
                    ));
                }
            }
        }
        Ok(Capture {
            child: Some(child),
            pcap,
            dir,
            stopped: false,
        })
    }

    /// The pcap file (valid until the `Capture` is dropped).
    pub fn pcap_path(&self) -> &Path {
        &self.pcap
    }

    /// Frames written so far (raw bytes, no tshark decoding), without stopping.
    /// dumpcap hands packets over in blocks, so a frame shows up here (and survives a
    /// stop) only ~250 ms after it was on the wire.
    /// No file yet counts as no frames.
    pub fn snapshot(&self) -> io::Result<Vec<(f64, Vec<u8>)>> {
        Ok(parse_pcap(&self.read_pcap()?))
    }

    fn read_pcap(&self) -> io::Result<Vec<u8>> {
        match std::fs::read(&self.pcap) {
            Ok(raw) => Ok(raw),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(context(e, format_args!("read {}", self.pcap.display()))),
        }
    }

    /// Waits up to `timeout` until some captured frame satisfies `pred`; `Ok(false)`
    /// on timeout.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> io::Result<bool> {
        let start = Instant::now();
        loop {
            if self.snapshot()?.iter().any(|(_, f)| pred(f)) {
                return Ok(true);
            }
            if start.elapsed() >= timeout {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn end(&mut self) {
        // libpcap's TPACKET_V3 ring hands frames to dumpcap per block, retired after a
        // 250 ms timeout, and dumpcap does NOT drain the ring on SIGINT: frames from the
        // last ~250 ms would be lost. Wait until the file has been stable for 400 ms.
        if self.child.is_some() {
            let mut last = u64::MAX;
            let mut stable_since = Instant::now();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                let len = std::fs::metadata(&self.pcap).map(|m| m.len()).unwrap_or(0);
                if len != last {
                    last = len;
                    stable_since = Instant::now();
                } else if stable_since.elapsed() >= Duration::from_millis(400) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.stopped = true;
    }

    /// Stops tshark (SIGINT, so it flushes) and returns every captured frame in order.
    /// The pcap file stays available through [`Capture::pcap_path`] until drop.
    /// Err if the pcap cannot be read or tshark cannot decode it.
    pub fn stop(&mut self) -> io::Result<Vec<CapturedPacket>> {
        self.end();
        let frames = parse_pcap(&self.read_pcap()?);
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let mut fields = self.fields("", FIELDS)?;
        if fields.iter().all(|r| r.get(9).is_none_or(String::is_empty)) {
            let mut alt: Vec<&str> = FIELDS.iter().take(9).copied().collect();
            alt.extend_from_slice(FIELDS_NEW);
            fields = self.fields("", &alt)?;
        }
        Ok(frames
            .into_iter()
            .enumerate()
            .map(|(i, (time, bytes))| {
                let f = fields.get(i).cloned().unwrap_or_default();
                let get = |k: usize| f.get(k).cloned().unwrap_or_default();
                let ip = |a: usize, b: usize| {
                    get(a)
                        .parse::<IpAddr>()
                        .ok()
                        .or_else(|| get(b).parse().ok())
                };
                CapturedPacket {
                    time,
                    bytes,
                    eth_src: get(1),
                    eth_dst: get(2),
                    src: ip(3, 5),
                    dst: ip(4, 6),
                    ttl: get(7).parse().ok().or_else(|| get(8).parse().ok()),
                    proto: get(9),
                    summary: get(10),
                }
            })
            .collect())
    }

    /// Runs `tshark -r PCAP -Y DISPLAY_FILTER -T fields -e F...` over the capture (stop
    /// first) and returns one row per matching frame. First occurrence of each field.
    pub fn fields(&self, display_filter: &str, fields: &[&str]) -> io::Result<Vec<Vec<String>>> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-n").arg("-r").arg(&self.pcap).args([
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=f",
        ]);
        if !display_filter.is_empty() {
            cmd.args(["-Y", display_filter]);
        }
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = self.run_tshark(cmd, "-T fields")?;
        Ok(out
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect())
    }

    fn run_tshark(&self, mut cmd: Command, what: &str) -> io::Result<String> {
        let what = format!("`tshark -r {} {what}`", self.pcap.display());
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| context(e, format_args!("cannot run {what}")))?;
        // A capture killed mid-write ends in a partial frame: tshark decodes the rest
        // and exits non-zero; that is no reason to lose the complete frames.
        let cut_short = String::from_utf8_lossy(&out.stderr).contains("cut short");
        if !out.status.success() && !cut_short {
            return Err(command_failed(what, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// tshark's full verbose decoding (`-V`) of the frames matching `display_filter`.
    pub fn verbose(&self, display_filter: &str) -> io::Result<String> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-n").arg("-r").arg(&self.pcap).arg("-V");
        if !display_filter.is_empty() {
            cmd.args(["-Y", display_filter]);
        }
        self.run_tshark(cmd, "-V")
    }

    /// Directory for extra artefacts tied to this capture's lifetime.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if !self.stopped {
            self.end();
        }
    }
}

/// Parses a classic pcap file into (timestamp, frame bytes).
pub fn parse_pcap(raw: &[u8]) -> Vec<(f64, Vec<u8>)> {
    let mut out = Vec::new();
    if raw.len() < 24 {
        return out;
    }
    let magic_le = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let (le, nanos) = match magic_le {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        _ => match u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            _ => return out,
        },
    };
    let rd = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut off = 24;
    while off + 16 <= raw.len() {
        let sec = rd(&raw[off..]);
        let frac = rd(&raw[off + 4..]);
        let incl = rd(&raw[off + 8..]) as usize;
        off += 16;
        if off + incl > raw.len() {
            break;
        }
        let t = f64::from(sec) + f64::from(frac) / if nanos { 1e9 } else { 1e6 };
        out.push((t, raw[off..off + incl].to_vec()));
        off += incl;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(le: bool, nanos: bool, frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut out = Vec::new();
        out.extend_from_slice(&w(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        out.extend_from_slice(&[0; 20]); // version, zone, sigfigs, snaplen, linktype
        for (sec, frac, bytes) in frames {
            out.extend_from_slice(&w(*sec));
            out.extend_from_slice(&w(*frac));
            out.extend_from_slice(&w(bytes.len() as u32));
            out.extend_from_slice(&w(bytes.len() as u32));
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn parses_both_byte_orders_and_resolutions() {
        let frames: &[(u32, u32, &[u8])] = &[(10, 500_000, b"abc"), (11, 0, b"defg")];
        for (le, nanos) in [(true, false), (false, false), (true, true), (false, true)] {
            let got = parse_pcap(&pcap(le, nanos, frames));
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].1, b"abc");
            assert_eq!(got[1].1, b"defg");
            let want = if nanos { 10.0005 } else { 10.5 };
            assert!((got[0].0 - want).abs() < 1e-9, "{}", got[0].0);
        }
    }

    #[test]
    fn truncated_or_foreign_input_is_tolerated() {
        let mut raw = pcap(true, false, &[(1, 0, b"abc"), (2, 0, b"defg")]);
        raw.truncate(raw.len() - 2);
        assert_eq!(parse_pcap(&raw).len(), 1);
        assert!(parse_pcap(&raw[..10]).is_empty());
        assert!(parse_pcap(&[0u8; 64]).is_empty());
    }
}
