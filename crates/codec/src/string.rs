//! UTF-8 encoded strings as MQTT defines them (section 1.5.4 of both specifications).
//!
//! An [`MqttString`] is a cheaply clonable, immutable slice of the packet buffer that has been
//! checked once: well-formed UTF-8 (so no surrogates, no overlong forms), no U+0000, at most
//! 65,535 bytes. Code points the specifications only discourage (controls, non-characters) are
//! accepted: treating them as malformed is a MAY, and rejecting them would refuse clients the
//! other brokers serve.

use bytes::Bytes;
use std::ops::Deref;

/// Why bytes are not an MQTT UTF-8 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StringError {
    /// Not well-formed UTF-8 (this includes encoded surrogates) [MQTT-1.5.4-1].
    #[error("string is not well-formed UTF-8 [MQTT-1.5.4-1]")]
    InvalidUtf8,
    /// Contains U+0000 [MQTT-1.5.4-2].
    #[error("string contains U+0000 [MQTT-1.5.4-2]")]
    NullCharacter,
    /// Longer than the 65,535 bytes a two-byte length prefix can express.
    #[error("string is longer than 65535 bytes")]
    TooLong,
}

/// A validated MQTT UTF-8 string backed by [`Bytes`].
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MqttString(Bytes);

impl MqttString {
    /// The empty string.
    pub const fn empty() -> MqttString {
        MqttString(Bytes::new())
    }

    /// Validates `bytes` without copying them.
    pub fn from_bytes(bytes: Bytes) -> Result<MqttString, StringError> {
        validate(&bytes)?;
        Ok(MqttString(bytes))
    }

    /// Copies and validates a string.
    pub fn new(s: &str) -> Result<MqttString, StringError> {
        Self::check_str(s)?;
        Ok(MqttString(Bytes::copy_from_slice(s.as_bytes())))
    }

    /// A string from a `'static` literal, without copying.
    pub fn from_static(s: &'static str) -> Result<MqttString, StringError> {
        Self::check_str(s)?;
        Ok(MqttString(Bytes::from_static(s.as_bytes())))
    }

    fn check_str(s: &str) -> Result<(), StringError> {
        if s.len() > usize::from(u16::MAX) {
            return Err(StringError::TooLong);
        }
        if s.as_bytes().contains(&0) {
            return Err(StringError::NullCharacter);
        }
        Ok(())
    }

    /// The string's text.
    pub fn as_str(&self) -> &str {
        // Topic names are read on every routing decision, so the check is not repeated here.
        #[allow(unsafe_code)]
        // SAFETY: every constructor validated these bytes as UTF-8 (`validate`, or they came
        // from a `&str`/`String`), and `Bytes` is immutable, so they are still UTF-8.
        unsafe {
            std::str::from_utf8_unchecked(&self.0)
        }
    }

    /// The underlying bytes (shared, not copied).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// A copy in an allocation of its own. Decoded strings share the read buffer they came
    /// from; one kept for long (a client identifier, a subscription) should not keep the
    /// whole buffer alive.
    pub fn compact(&self) -> MqttString {
        MqttString(Bytes::copy_from_slice(&self.0))
    }

    /// Consumes the string, returning its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

fn validate(bytes: &[u8]) -> Result<(), StringError> {
    if bytes.len() > usize::from(u16::MAX) {
        return Err(StringError::TooLong);
    }
    // U+0000 can only be encoded as the byte 0 in well-formed UTF-8 (the overlong C0 80 form is
    // rejected by from_utf8), so a byte scan finds it.
    if bytes.contains(&0) {
        return Err(StringError::NullCharacter);
    }
    std::str::from_utf8(bytes).map_err(|_| StringError::InvalidUtf8)?;
    Ok(())
}

impl Deref for MqttString {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for MqttString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for MqttString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<&str> for MqttString {
    type Error = StringError;
    fn try_from(s: &str) -> Result<Self, StringError> {
        MqttString::new(s)
    }
}

impl TryFrom<String> for MqttString {
    type Error = StringError;
    fn try_from(s: String) -> Result<Self, StringError> {
        Self::check_str(&s)?;
        Ok(MqttString(Bytes::from(s)))
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_multibyte_text() {
        for s in [
            "",
            "a/b",
            "héllo",
            "日本語",
            "\u{1F600}",
            "\u{FEFF}x",
            "\u{7F}",
        ] {
            assert_eq!(MqttString::new(s).unwrap(), s);
            assert!(MqttString::from_bytes(Bytes::copy_from_slice(s.as_bytes())).is_ok());
        }
    }

    #[test]
    fn rejects_null_character_mqtt_1_5_4_2() {
        assert_eq!(MqttString::new("a\0b"), Err(StringError::NullCharacter));
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(b"\0")),
            Err(StringError::NullCharacter)
        );
    }

    #[test]
    fn rejects_ill_formed_utf8_mqtt_1_5_4_1() {
        let cases: &[&[u8]] = &[
            b"\xED\xA0\x80",     // encoded surrogate U+D800
            b"\xED\xBF\xBF",     // encoded surrogate U+DFFF
            b"\xC0\x80",         // overlong U+0000
            b"\xC1\xBF",         // overlong
            b"\xE0\x80\xAF",     // overlong '/'
            b"\xF4\x90\x80\x80", // above U+10FFFF
            b"\xFF",
            b"abc\xE2\x82", // truncated sequence
        ];
        for case in cases {
            assert_eq!(
                MqttString::from_bytes(Bytes::copy_from_slice(case)),
                Err(StringError::InvalidUtf8),
                "{case:x?}"
            );
        }
    }

    #[test]
    fn length_limit_is_65535_bytes() {
        let ok = "x".repeat(65535);
        assert!(MqttString::new(&ok).is_ok());
        let long = "x".repeat(65536);
        assert_eq!(MqttString::new(&long), Err(StringError::TooLong));
    }
}
