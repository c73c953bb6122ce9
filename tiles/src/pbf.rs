//! The few protobuf primitives safegrid's formats need (vector tiles, glyph ranges), written by
//! hand: each format has a handful of messages, and a generated codec would be larger.

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_packed(out: &mut Vec<u8>, field: u32, values: &[u32]) {
    let mut buf = Vec::with_capacity(values.len() * 2);
    for v in values {
        put_varint(&mut buf, u64::from(*v));
    }
    put_bytes(out, field, &buf);
}

pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

pub(crate) enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated(what))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::Truncated(what))
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(DecodeError::Truncated(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn next(&mut self, message: &'static str) -> Result<Option<(u64, Field<'a>)>, DecodeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint(message)?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        let f = match wire {
            0 => Field::Varint(self.varint(message)?),
            1 => Field::Fixed64(self.take(8, message)?.try_into().map_err(|_| DecodeError::Truncated(message))?),
            2 => {
                let n = self.varint(message)?;
                Field::Bytes(self.take(usize::try_from(n).map_err(|_| DecodeError::Truncated(message))?, message)?)
            }
            5 => Field::Fixed32(self.take(4, message)?.try_into().map_err(|_| DecodeError::Truncated(message))?),
            _ => return Err(DecodeError::WireType { message, field, wire, expected: 2 }),
        };
        Ok(Some((field, f)))
    }
}

/// Why bytes are not a valid vector tile (or glyph message): the protobuf framing read here,
/// and what `mvt` and `glyphs` check above it. Defined at the bottom so that nothing here
/// imports from the modules that use it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The data ends inside a field.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A wire type protobuf does not define, or not the one the field needs.
    #[error("field {field} of {message} has wire type {wire}, expected {expected}")]
    WireType {
        /// The message being read.
        message: &'static str,
        /// The field number.
        field: u64,
        /// The wire type found.
        wire: u8,
        /// The wire type the field needs.
        expected: u8,
    },
    /// A layer without a name, or with a version other than 1 or 2.
    #[error("layer {0}")]
    BadLayer(String),
    /// A feature's tags refer to keys or values the layer lacks, or are odd in number.
    #[error("feature tags: {0}")]
    BadTags(String),
    /// The geometry commands do not fit the geometry type.
    #[error("geometry: {0}")]
    BadGeometry(String),
    /// Text that is not UTF-8.
    #[error("string is not UTF-8")]
    Utf8,
}
