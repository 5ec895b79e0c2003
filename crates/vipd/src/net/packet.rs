//! Sending complete Ethernet frames (gratuitous ARP, unsolicited neighbour
//! advertisements, built by the caller) through an `AF_PACKET` socket.

use std::io;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

/// A send-only `AF_PACKET`/`SOCK_RAW` socket bound to one interface.
///
/// It is opened with protocol 0, so the kernel never queues received frames on it
/// (no receive cost), and bound to the interface index.
#[derive(Debug)]
pub struct FrameSender {
    fd: AsyncFd<Socket>,
    ifindex: u32,
}

impl FrameSender {
    /// Opens the socket on interface `ifindex`. Must be called inside a tokio runtime.
    pub fn open(ifindex: u32) -> io::Result<FrameSender> {
        let ctx = |what: &str| {
            let what = format!("AF_PACKET socket on ifindex {ifindex}: {what}");
            move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"))
        };
        let sock = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))
            .map_err(ctx("socket"))?;
        sock.set_nonblocking(true).map_err(ctx("O_NONBLOCK"))?;
        let addr = crate::sys::packet_sockaddr(ifindex, 0, None).map_err(ctx("address"))?;
        sock.bind(&addr).map_err(ctx("bind"))?;
        let fd = crate::sys::async_fd(sock).map_err(ctx("register with tokio"))?;
        Ok(FrameSender { fd, ifindex })
    }

    /// The interface frames go out of.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one complete Ethernet frame (destination MAC, source MAC, EtherType,
    /// payload; no FCS) as is.
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Ethernet frame shorter than its 14-byte header",
            ));
        }
        let n = self
            .fd
            .async_io(tokio::io::Interest::WRITABLE, |inner| inner.send(frame))
            .await
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("send frame on ifindex {}: {e}", self.ifindex),
                )
            })?;
        if n != frame.len() {
            return Err(io::Error::other(format!(
                "short frame send on ifindex {}: {n} of {} bytes",
                self.ifindex,
                frame.len()
            )));
        }
        Ok(())
    }
}
