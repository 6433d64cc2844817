//! The three ways to reach a reader: connect to it, let it (or its vendor software) connect to
//! us, or open its serial line.

use std::pin::Pin;

use event_config::edge::{FlowControl, Parity, ReaderConfig, SerialSettings, Transport as Kind};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// A connected byte stream, whatever carries it.
pub trait AsyncIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncIo for T {}

pub type Io = Pin<Box<dyn AsyncIo>>;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("listening on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("accepting on {addr}: {source}")]
    Accept { addr: String, source: std::io::Error },
    #[error("opening serial device {device}: {source}")]
    Serial { device: String, source: tokio_serial::Error },
    #[error("reader {0} has no address or device")]
    Missing(String),
}

/// A reader's transport, ready to open sessions.
#[derive(Debug)]
pub enum Transport {
    Connect(String),
    Listen { listener: TcpListener, addr: String },
    Serial(SerialSettings),
}

impl Transport {
    /// Prepares the transport; a listening one binds now, so a bad address fails at start.
    pub async fn new(reader: &ReaderConfig) -> Result<Transport, TransportError> {
        match reader.transport {
            Kind::Tcp => Ok(Transport::Connect(
                reader.address.clone().ok_or_else(|| TransportError::Missing(reader.id.clone()))?,
            )),
            Kind::Listen => {
                let addr = reader.address.clone().ok_or_else(|| TransportError::Missing(reader.id.clone()))?;
                let listener = TcpListener::bind(&addr)
                    .await
                    .map_err(|source| TransportError::Listen { addr: addr.clone(), source })?;
                let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
                Ok(Transport::Listen { listener, addr })
            }
            Kind::Serial => {
                Ok(Transport::Serial(reader.serial.clone().ok_or_else(|| TransportError::Missing(reader.id.clone()))?))
            }
        }
    }

    /// Where a listening transport listens (for tests and status).
    pub fn local_addr(&self) -> Option<String> {
        match self {
            Transport::Listen { addr, .. } => Some(addr.clone()),
            _ => None,
        }
    }

    /// Opens one session's stream and names its peer.
    pub async fn open(&mut self) -> Result<(Io, String), TransportError> {
        match self {
            Transport::Connect(addr) => {
                let s = TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|source| TransportError::Connect { addr: addr.clone(), source })?;
                let _ = s.set_nodelay(true);
                Ok((Box::pin(s), addr.clone()))
            }
            Transport::Listen { listener, addr } => {
                let (s, peer) =
                    listener.accept().await.map_err(|source| TransportError::Accept { addr: addr.clone(), source })?;
                let _ = s.set_nodelay(true);
                Ok((Box::pin(s), peer.to_string()))
            }
            Transport::Serial(settings) => {
                let port = tokio_serial::SerialStream::open(&serial_builder(settings)).map_err(|source| {
                    TransportError::Serial { device: settings.device.display().to_string(), source }
                })?;
                Ok((Box::pin(port), settings.device.display().to_string()))
            }
        }
    }
}

fn serial_builder(s: &SerialSettings) -> tokio_serial::SerialPortBuilder {
    let path = s.device.to_string_lossy().into_owned();
    tokio_serial::new(path, s.baud)
        .data_bits(match s.data_bits {
            5 => tokio_serial::DataBits::Five,
            6 => tokio_serial::DataBits::Six,
            7 => tokio_serial::DataBits::Seven,
            _ => tokio_serial::DataBits::Eight,
        })
        .parity(match s.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Odd => tokio_serial::Parity::Odd,
            Parity::Even => tokio_serial::Parity::Even,
        })
        .stop_bits(if s.stop_bits == 2 { tokio_serial::StopBits::Two } else { tokio_serial::StopBits::One })
        .flow_control(match s.flow_control {
            FlowControl::None => tokio_serial::FlowControl::None,
            FlowControl::Software => tokio_serial::FlowControl::Software,
            FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        })
}
