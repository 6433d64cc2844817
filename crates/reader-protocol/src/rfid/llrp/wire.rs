//! Byte-level reading and writing shared by the LLRP message and parameter codecs.
//!
//! Reading goes through [`Cursor`] (bounds-checked big-endian fields) and [`Params`] (a parameter
//! list, TV and TLV). Every failure is a [`Fault`] carrying a lowercase reason; the message layer
//! turns it into a [`crate::DecodeError`] with the message bytes attached.
//! Writing goes through [`Writer`], which back-patches TLV lengths and records the first overflow
//! instead of panicking.

use super::EncodeError;

/// Why a message body could not be decoded (converted to `DecodeError::Malformed` by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fault(pub(super) String);

pub(super) type Res<T> = Result<T, Fault>;

/// Builds a `Err(Fault)` from a format string.
macro_rules! fault {
    ($($arg:tt)*) => {
        Err($crate::rfid::llrp::wire::Fault(format!($($arg)*)))
    };
}
pub(super) use fault;

/// A bounds-checked big-endian reader over one parameter's or message's value bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes }
    }

    /// Bytes not yet read (usually the parameter list after the fixed fields).
    pub(super) fn rest(self) -> &'a [u8] {
        self.bytes
    }

    pub(super) fn take(&mut self, n: usize, what: &str) -> Res<&'a [u8]> {
        if self.bytes.len() < n {
            return fault!("truncated {what}: need {n} bytes, {} left", self.bytes.len());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Res<[u8; N]> {
        let head = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(head);
        Ok(a)
    }

    pub(super) fn u8(&mut self, what: &str) -> Res<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(super) fn i8(&mut self, what: &str) -> Res<i8> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }
    pub(super) fn u16(&mut self, what: &str) -> Res<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    pub(super) fn i16(&mut self, what: &str) -> Res<i16> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }
    pub(super) fn u32(&mut self, what: &str) -> Res<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    pub(super) fn u64(&mut self, what: &str) -> Res<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    pub(super) fn bytes12(&mut self, what: &str) -> Res<[u8; 12]> {
        self.array(what)
    }

    /// A UTF-8 string with a u16 byte-count prefix; invalid UTF-8 is replaced, not rejected,
    /// because a status text is for humans and must not make a response undecodable.
    pub(super) fn utf8(&mut self, what: &str) -> Res<String> {
        let n = usize::from(self.u16(what)?);
        let raw = self.take(n, what)?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }
}

/// The value length of a TV parameter (LLRP 1.0.1 types 1–17, LLRP 1.1 types 18–20).
///
/// TV parameters carry no length, so an unknown TV type cannot be skipped: the rest of the
/// parameter list is then unreadable and the message is malformed.
pub(super) fn tv_len(ty: u8) -> Option<usize> {
    Some(match ty {
        1 => 2,            // AntennaID
        2..=5 => 8,        // First/LastSeenTimestamp UTC/Uptime
        6 => 1,            // PeakRSSI
        7 | 8 => 2,        // ChannelIndex, TagSeenCount
        9 => 4,            // ROSpecID
        10..=12 => 2,      // InventoryParameterSpecID, C1G2_CRC, C1G2_PC
        13 => 12,          // EPC-96
        14 | 15 | 17 => 2, // SpecIndex, ClientRequestOpSpecResult, OpSpecID
        16 => 4,           // AccessSpecID
        18 => 4,           // C1G2SingulationDetails (1.1)
        19 | 20 => 2,      // C1G2_XPC_W1, C1G2_XPC_W2 (1.1)
        _ => return None,
    })
}

/// One parameter of a parameter list: its type and value bytes (header stripped).
#[derive(Debug, Clone, Copy)]
pub(super) struct Param<'a> {
    /// TV types are 1–127, TLV types 128–1023, so one number space serves both.
    pub(super) ty: u16,
    pub(super) value: &'a [u8],
}

/// Iterates a parameter list. Stops after the first fault.
#[derive(Debug, Clone)]
pub(super) struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Params<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Params<'a> {
        Params { rest: bytes }
    }

    fn next_param(&mut self) -> Res<Param<'a>> {
        let first = self.rest[0];
        if first & 0x80 != 0 {
            let ty = first & 0x7f;
            let Some(n) = tv_len(ty) else {
                return fault!("unknown tv parameter type {ty}: cannot skip it");
            };
            if self.rest.len() < 1 + n {
                return fault!("truncated tv parameter {ty}: need {} bytes, {} left", 1 + n, self.rest.len());
            }
            let value = &self.rest[1..1 + n];
            self.rest = &self.rest[1 + n..];
            return Ok(Param { ty: u16::from(ty), value });
        }
        if self.rest.len() < 4 {
            return fault!("truncated tlv header: {} bytes left", self.rest.len());
        }
        let ty = u16::from_be_bytes([self.rest[0], self.rest[1]]) & 0x3ff;
        let len = usize::from(u16::from_be_bytes([self.rest[2], self.rest[3]]));
        if len < 4 {
            return fault!("tlv parameter {ty} length {len} under its 4-byte header");
        }
        if len > self.rest.len() {
            return fault!("tlv parameter {ty} length {len} over the {} bytes left", self.rest.len());
        }
        let value = &self.rest[4..len];
        self.rest = &self.rest[len..];
        Ok(Param { ty, value })
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Res<Param<'a>>;

    fn next(&mut self) -> Option<Res<Param<'a>>> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.next_param();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

/// Appends big-endian fields to a buffer; TLV lengths are back-patched by [`Writer::end_tlv`].
#[derive(Debug)]
pub(super) struct Writer<'a> {
    out: &'a mut Vec<u8>,
    error: Option<EncodeError>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out, error: None }
    }

    /// The first overflow met while writing, if any.
    pub(super) fn finish(self) -> Result<(), EncodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.out.len()
    }
    pub(super) fn patch_u32(&mut self, at: usize, v: u32) {
        self.out[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    pub(super) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub(super) fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn bytes(&mut self, v: &[u8]) {
        self.out.extend_from_slice(v);
    }

    /// A byte string with a u16 length prefix.
    pub(super) fn counted(&mut self, what: &'static str, v: &[u8]) {
        match u16::try_from(v.len()) {
            Ok(n) => {
                self.u16(n);
                self.bytes(v);
            }
            Err(_) => {
                self.fail(EncodeError::FieldTooLong { field: what, len: v.len() });
                self.u16(0);
            }
        }
    }

    /// A u16 element count followed by the elements.
    pub(super) fn count(&mut self, what: &'static str, n: usize) {
        match u16::try_from(n) {
            Ok(n) => self.u16(n),
            Err(_) => {
                self.fail(EncodeError::FieldTooLong { field: what, len: n });
                self.u16(0);
            }
        }
    }

    pub(super) fn tv_i8(&mut self, ty: u8, v: i8) {
        self.u8(0x80 | ty);
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn tv_u16(&mut self, ty: u8, v: u16) {
        self.u8(0x80 | ty);
        self.u16(v);
    }
    pub(super) fn tv_u32(&mut self, ty: u8, v: u32) {
        self.u8(0x80 | ty);
        self.u32(v);
    }
    pub(super) fn tv_u64(&mut self, ty: u8, v: u64) {
        self.u8(0x80 | ty);
        self.u64(v);
    }

    /// Starts a TLV parameter; pass the returned mark to [`Writer::end_tlv`].
    pub(super) fn begin_tlv(&mut self, ty: u16) -> usize {
        let mark = self.out.len();
        self.u16(ty & 0x3ff);
        self.u16(0);
        mark
    }

    pub(super) fn end_tlv(&mut self, mark: usize) {
        let len = self.out.len() - mark;
        let ty = u16::from_be_bytes([self.out[mark], self.out[mark + 1]]);
        match u16::try_from(len) {
            Ok(n) => self.out[mark + 2..mark + 4].copy_from_slice(&n.to_be_bytes()),
            Err(_) => self.fail(EncodeError::ParameterTooLong { param_type: ty, len }),
        }
    }

    /// A TLV parameter whose value is written by `body`.
    pub(super) fn tlv(&mut self, ty: u16, body: impl FnOnce(&mut Writer<'a>)) {
        let mark = self.begin_tlv(ty);
        body(self);
        self.end_tlv(mark);
    }

    pub(super) fn fail(&mut self, e: EncodeError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
}
