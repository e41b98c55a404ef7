//! A fake guest's display: a real RFB 3.8 server on a loopback port with a
//! blank screen, so consoles can be exercised end to end (token, proxy,
//! VNC handshake) without a hypervisor. It speaks just enough of the
//! protocol for noVNC and other viewers: no security, a black framebuffer
//! sent whole on each non-incremental update request, input ignored.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WIDTH: u16 = 640;
const HEIGHT: u16 = 480;

/// A listening display; dropping the handle stops it.
pub struct Display {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Display {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a display on `listen` named `name` (the desktop name viewers show).
pub async fn open(name: String, listen: std::net::IpAddr) -> std::io::Result<Display> {
    let listener = TcpListener::bind((listen, 0)).await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let name = name.clone();
            tokio::spawn(async move {
                if let Err(e) = serve(stream, &name).await {
                    tracing::debug!(error = %e, "fake display connection ended");
                }
            });
        }
    });
    Ok(Display { port, task })
}

fn server_init(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&WIDTH.to_be_bytes());
    out.extend_from_slice(&HEIGHT.to_be_bytes());
    // 32 bits per pixel, depth 24, little-endian, true colour, 8 bits each
    // of red (shift 16), green (8) and blue (0), then 3 bytes of padding.
    out.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

async fn serve(mut s: TcpStream, name: &str) -> std::io::Result<()> {
    s.write_all(b"RFB 003.008\n").await?;
    let mut version = [0u8; 12];
    s.read_exact(&mut version).await?;
    // One security type: None.
    s.write_all(&[1, 1]).await?;
    let _chosen = s.read_u8().await?;
    s.write_all(&0u32.to_be_bytes()).await?;
    let _shared = s.read_u8().await?;
    s.write_all(&server_init(name)).await?;
    let mut bytes_per_pixel = 4usize;
    loop {
        match s.read_u8().await? {
            // SetPixelFormat: 3 padding bytes, then the 16-byte format.
            0 => {
                let mut m = [0u8; 19];
                s.read_exact(&mut m).await?;
                bytes_per_pixel = (usize::from(m[3]) / 8).max(1);
            }
            // SetEncodings: padding, a count, then 4 bytes each.
            2 => {
                let _pad = s.read_u8().await?;
                let n = s.read_u16().await?;
                let mut skip = vec![0u8; usize::from(n) * 4];
                s.read_exact(&mut skip).await?;
            }
            // FramebufferUpdateRequest: answered only when not incremental,
            // since nothing on a blank screen ever changes.
            3 => {
                let mut m = [0u8; 9];
                s.read_exact(&mut m).await?;
                if m[0] == 0 {
                    let mut update = vec![0, 0, 0, 1, 0, 0, 0, 0];
                    update.extend_from_slice(&WIDTH.to_be_bytes());
                    update.extend_from_slice(&HEIGHT.to_be_bytes());
                    update.extend_from_slice(&0i32.to_be_bytes()); // raw encoding
                    update.resize(update.len() + usize::from(WIDTH) * usize::from(HEIGHT) * bytes_per_pixel, 0);
                    s.write_all(&update).await?;
                }
            }
            // KeyEvent and PointerEvent: ignored.
            4 => {
                let mut m = [0u8; 7];
                s.read_exact(&mut m).await?;
            }
            5 => {
                let mut m = [0u8; 5];
                s.read_exact(&mut m).await?;
            }
            // ClientCutText: padding, a length, the text.
            6 => {
                let mut pad = [0u8; 3];
                s.read_exact(&mut pad).await?;
                let n = s.read_u32().await?;
                let mut skip = vec![0u8; n.min(1 << 20) as usize];
                s.read_exact(&mut skip).await?;
            }
            other => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unknown RFB message {other}"),
                ))
            }
        }
    }
}
