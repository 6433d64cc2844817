//! Pseudo-terminal pairs: the emulator holds the master end; the slave end is a real tty
//! (`/dev/pts/N`) that the edge opens with tokio-serial, reachable at a stable symlink the way
//! udev rules give real adapters stable names.

use std::io;
use std::path::{Path, PathBuf};

use tokio_serial::{SerialPort, SerialStream};

/// The emulator's side of a serial line.
#[derive(Debug)]
pub struct Pty {
    /// Read and write the device's bytes here.
    pub master: SerialStream,
    /// Kept open so the master does not see a hang-up while no client has the tty open.
    _slave: SerialStream,
    slave_path: PathBuf,
    link: Option<PathBuf>,
}

impl Pty {
    /// Opens a pair; with `link`, the slave's path is also reachable there (replacing any old link).
    pub fn open(link: Option<&Path>) -> io::Result<Pty> {
        let (master, slave) = SerialStream::pair()?;
        let slave_path =
            PathBuf::from(slave.name().ok_or_else(|| io::Error::other("the pseudo-terminal slave has no name"))?);
        if let Some(link) = link {
            if let Some(dir) = link.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            match std::fs::remove_file(link) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            std::os::unix::fs::symlink(&slave_path, link)?;
        }
        Ok(Pty { master, _slave: slave, slave_path, link: link.map(Path::to_path_buf) })
    }

    /// The path a client opens: the link if there is one, else `/dev/pts/N`.
    pub fn path(&self) -> &Path {
        self.link.as_deref().unwrap_or(&self.slave_path)
    }

    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_cross_a_real_tty_opened_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("tty/reader-a");
        let mut pty = Pty::open(Some(&link)).unwrap();
        assert!(pty.slave_path().starts_with("/dev/pts"));
        let mut client = tokio_serial::SerialStream::open(&tokio_serial::new(link.to_str().unwrap(), 9600)).unwrap();
        pty.master.write_all(b"aa0102\r\n").await.unwrap();
        let mut buf = [0u8; 8];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"aa0102\r\n");
        client.write_all(b"ab").await.unwrap();
        let mut two = [0u8; 2];
        pty.master.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ab");
        drop(pty);
        assert!(!link.exists(), "the link goes with the pty");
    }
}
