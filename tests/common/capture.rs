//! Packet capture with tshark inside a namespace; frames come back both as raw bytes
//! (parsed from the pcap file by us) and as tshark's independent decoding.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::TempDir;
use super::ns::Netns;

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
    dir: TempDir,
    stopped: bool,
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
    /// tshark reports "Capturing on".
    pub fn start(ns: &Netns, iface: &str, filter: &str) -> Capture {
        let dir = TempDir::new("capture");
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
            .unwrap_or_else(|e| panic!("cannot start tshark (is it installed?): {e}"));
        let stderr = child.stderr.take().expect("tshark stderr");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    // Receiver gone; keep draining so tshark never blocks on stderr.
                }
            }
        });
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
                Err(_) if capturing_on => break,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "tshark did not start capturing on {iface} in {}: {}",
                        ns.name(),
                        seen.join("\n")
                    );
                }
            }
        }
        Capture {
            child: Some(child),
            pcap,
            dir,
            stopped: false,
        }
    }

    /// The pcap file (valid until the `Capture` is dropped).
    pub fn pcap_path(&self) -> &std::path::Path {
        &self.pcap
    }

    /// Frames written so far (raw bytes, no tshark decoding), without stopping.
    /// dumpcap hands packets over in blocks, so a frame shows up here (and survives a
    /// stop) only ~250 ms after it was on the wire.
    pub fn snapshot(&self) -> Vec<(f64, Vec<u8>)> {
        parse_pcap(&std::fs::read(&self.pcap).unwrap_or_default())
    }

    /// Waits up to `timeout` until some captured frame satisfies `pred`.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&[u8]) -> bool) -> bool {
        super::wait_until(timeout, || self.snapshot().iter().any(|(_, f)| pred(f))).is_some()
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
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
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
    pub fn stop(&mut self) -> Vec<CapturedPacket> {
        self.end();
        let raw = std::fs::read(&self.pcap).unwrap_or_default();
        let frames = parse_pcap(&raw);
        let mut fields = self.fields("", FIELDS);
        if !frames.is_empty() && fields.iter().all(|r| r.get(9).is_none_or(String::is_empty)) {
            let mut alt = FIELDS[..9].to_vec();
            alt.extend_from_slice(FIELDS_NEW);
            fields = self.fields("", &alt);
        }
        frames
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
            .collect()
    }

    /// Runs `tshark -r PCAP -Y DISPLAY_FILTER -T fields -e F...` over the capture (stop
    /// first) and returns one row per matching frame. First occurrence of each field.
    pub fn fields(&self, display_filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
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
        let out = cmd.stderr(Stdio::null()).output().expect("run tshark -r");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// tshark's full verbose decoding (`-V`) of the frames matching `display_filter`.
    pub fn verbose(&self, display_filter: &str) -> String {
        let mut cmd = Command::new("tshark");
        cmd.arg("-n").arg("-r").arg(&self.pcap).arg("-V");
        if !display_filter.is_empty() {
            cmd.args(["-Y", display_filter]);
        }
        let out = cmd.stderr(Stdio::null()).output().expect("run tshark -V");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Directory for extra artefacts tied to this capture's lifetime.
    pub fn dir(&self) -> &std::path::Path {
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
