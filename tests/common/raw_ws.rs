//! A WebSocket client by hand on a TCP stream, for tests that control exactly what is read and
//! written (never reading, partial frames, floods).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::within;

/// How long one handshake, frame read or frame write may take. Longer than the bounds tests put
/// around their own reads, so those report first, with their own messages.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(20);

/// A WebSocket client by hand, so the test controls when (never) it reads.
pub struct RawClient {
    /// The connection, for tests that read or write it directly.
    pub tcp: TcpStream,
}

impl RawClient {
    pub async fn connect(addr: std::net::SocketAddr) -> RawClient {
        within(
            RAW_TIMEOUT,
            "the WebSocket handshake",
            Self::connect_unbounded(addr),
        )
        .await
    }

    async fn connect_unbounded(addr: std::net::SocketAddr) -> RawClient {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Self::handshake_unbounded(tcp).await
    }

    /// The WebSocket handshake on a connection the test opened itself (e.g. with a small buffer).
    pub async fn handshake(tcp: TcpStream) -> RawClient {
        within(
            RAW_TIMEOUT,
            "the WebSocket handshake",
            Self::handshake_unbounded(tcp),
        )
        .await
    }

    async fn handshake_unbounded(mut tcp: TcpStream) -> RawClient {
        let request = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                       Upgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        RawClient { tcp }
    }

    /// Reads one unmasked, unfragmented server frame: (opcode, payload).
    pub async fn read_frame(&mut self) -> (u8, Vec<u8>) {
        within(
            RAW_TIMEOUT,
            "a frame from the hub",
            self.read_frame_unbounded(),
        )
        .await
    }

    async fn read_frame_unbounded(&mut self) -> (u8, Vec<u8>) {
        let (first, len) = (
            self.tcp.read_u8().await.unwrap(),
            self.tcp.read_u8().await.unwrap(),
        );
        assert_eq!(
            (first & 0xf0, len & 0x80),
            (0x80, 0),
            "an unfragmented, unmasked frame"
        );
        let len = match len {
            126 => self.tcp.read_u16().await.unwrap() as usize,
            127 => self.tcp.read_u64().await.unwrap() as usize,
            n => n as usize,
        };
        let mut payload = vec![0; len];
        self.tcp.read_exact(&mut payload).await.unwrap();
        (first & 0x0f, payload)
    }

    /// Reads one text frame.
    pub async fn read_text(&mut self) -> String {
        let (opcode, payload) = self.read_frame().await;
        assert_eq!(opcode, 1, "a text frame");
        String::from_utf8(payload).unwrap()
    }

    /// Sends a masked frame (`opcode` 1 text, 9 ping...), as clients must; payloads up to 125 bytes.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        assert!(payload.len() <= 125);
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        within(
            RAW_TIMEOUT,
            "a frame to be written",
            self.tcp.write_all(&frame),
        )
        .await
        .unwrap();
    }

    /// Sends a masked text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(1, text.as_bytes()).await;
    }
}
