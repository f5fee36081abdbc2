//! Free loopback ports.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

/// A port on 127.0.0.1 that is free for both TCP and UDP at the time of the call.
///
/// Racy by nature: another process may take it before the caller binds it. Both protocols
/// are checked because a forwarder listener often binds the same port for UDP and TCP.
pub fn free_port() -> io::Result<u16> {
    for _ in 0..100 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = tcp.local_addr()?.port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        "no loopback port free for both TCP and UDP in 100 tries",
    ))
}

/// `127.0.0.1:`[`free_port`].
pub fn free_addr() -> io::Result<SocketAddr> {
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_binds_for_tcp_and_udp() {
        let port = free_port().expect("port");
        assert_ne!(port, 0);
        let _tcp = TcpListener::bind(("127.0.0.1", port)).expect("tcp");
        let _udp = UdpSocket::bind(("127.0.0.1", port)).expect("udp");
        assert!(free_addr().expect("addr").ip().is_loopback());
    }
}
