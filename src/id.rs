//! Member and cluster ids (etcd's `types.ID`).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A member or cluster id.
///
/// It prints and parses as etcd does (`pkg/types/id.go`): lower-case
/// hexadecimal without `0x` and without padding, so `Id(0x1a)` is `"1a"` and
/// `Id(0)` is `"0"`. These strings travel in `X-Server-From` and
/// `X-Etcd-Cluster-ID`, where etcd compares them as exact strings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub u64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl FromStr for Id {
    type Err = Error;

    /// Parses base-16 as Go's `strconv.ParseUint(s, 16, 64)`: upper and lower
    /// case digits, no sign, no `0x`, at most 64 bits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex_only {
            return Err(Error::InvalidId(s.to_owned()));
        }
        u64::from_str_radix(s, 16)
            .map(Id)
            .map_err(|_| Error::InvalidId(s.to_owned()))
    }
}

impl From<u64> for Id {
    fn from(v: u64) -> Self {
        Id(v)
    }
}

impl From<Id> for u64 {
    fn from(id: Id) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_lower_hex_without_padding() {
        assert_eq!(Id(0).to_string(), "0");
        assert_eq!(Id(0x1a).to_string(), "1a");
        assert_eq!(Id(0x8e9e05c52164694d).to_string(), "8e9e05c52164694d");
    }

    #[test]
    fn parse_round_trips_and_rejects_junk() {
        assert_eq!("1A".parse::<Id>().unwrap(), Id(0x1a));
        assert_eq!("ffffffffffffffff".parse::<Id>().unwrap(), Id(u64::MAX));
        for bad in ["", "0x1", "-1", "+1", "g", "10000000000000000"] {
            assert!(bad.parse::<Id>().is_err(), "{bad}");
        }
    }
}
