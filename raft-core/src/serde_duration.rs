//! How a [`Duration`] reads in a config file with the `serde` feature: a
//! number and a unit, as `"150ms"`, `"1s"`, `"2.5s"`, `"1m"` (units `ns`,
//! `us`, `ms`, `s`, `m`, `h`). Written the same way, in the largest unit
//! that keeps it whole.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use std::time::Duration;

const UNITS: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// `duration` as text: `"150ms"`, `"1s"`.
pub(crate) fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let (unit, size) =
        UNITS.iter().find(|(_, size)| nanos.is_multiple_of(*size)).copied().unwrap_or(("ns", 1));
    format!("{}{unit}", nanos / size)
}

/// Reads `"150ms"`, `"2.5s"`, `"1m"`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let size = UNITS
        .iter()
        .find(|(name, _)| *name == unit.trim())
        .map(|(_, size)| *size)
        .ok_or_else(|| format!("{text:?}: the unit must be one of h, m, s, ms, us, ns"))?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = whole.parse().map_err(|_| format!("{text:?} is not a number and a unit"))?;
    let mut nanos = whole.checked_mul(size).ok_or_else(|| format!("{text:?} is too long"))?;
    if !fraction.is_empty() {
        let digits: u32 = fraction.len().try_into().map_err(|_| format!("{text:?}: too many digits"))?;
        let value: u128 = fraction.parse().map_err(|_| format!("{text:?} is not a number and a unit"))?;
        let scale = 10u128.checked_pow(digits).ok_or_else(|| format!("{text:?}: too many digits"))?;
        nanos = nanos.saturating_add(value.saturating_mul(size) / scale);
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("{text:?} is too long"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

pub(crate) fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct Text;
    impl Visitor<'_> for Text {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"150ms\" or \"2s\"")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            parse(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Text)
}

/// The same for an `Option<Duration>` (`null` for none).
pub(crate) mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_some(&super::format(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::parse(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_as_a_number_and_a_unit() {
        for (text, duration) in [
            ("150ms", Duration::from_millis(150)),
            ("1s", Duration::from_secs(1)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(parse(text), Ok(duration), "{text}");
            assert_eq!(format(duration), text);
        }
        assert_eq!(parse("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse(" 10 ms"), Ok(Duration::from_millis(10)));
        for bad in ["", "10", "ms", "1.2.3s", "5 parsecs", "-1s", "99999999999999999999999999999h"] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
