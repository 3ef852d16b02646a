//! The subject's common name of a DER certificate, read as Go's
//! `x509.Certificate.Subject.CommonName` reads it: the last `CN` attribute
//! of the subject name. Pure: no TLS library, no allocation beyond the
//! name, and never a panic on malformed input (`None` instead).

/// DER tags met on the way to the subject.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version`, present in v2 and v3 certificates.
const VERSION: u8 = 0xa0;
/// The `id-at-commonName` OID, 2.5.4.3, as DER contents.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// The common name of the certificate `der`'s subject, or `None` if it has
/// none or the certificate cannot be read.
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (mut tbs, _) = expect(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = tlv(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity, then the subject.
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (mut subject, _) = expect(tbs, SEQUENCE)?;
    let mut name = None;
    while !subject.is_empty() {
        let (set, rest) = expect(subject, SET)?;
        name = last_common_name(set)?.or(name);
        subject = rest;
    }
    name
}

/// The last common name in one relative distinguished name (a `SET` of
/// `SEQUENCE { type, value }`); `Some(None)` if it has none.
fn last_common_name(mut set: &[u8]) -> Option<Option<String>> {
    let mut name = None;
    while !set.is_empty() {
        let (attribute, rest) = expect(set, SEQUENCE)?;
        let (oid, value) = expect(attribute, OID)?;
        if oid == COMMON_NAME {
            let (tag, contents, _) = tlv(value)?;
            name = Some(text(tag, contents)?);
        }
        set = rest;
    }
    Some(name)
}

/// A directory string's text: UTF8String, PrintableString, IA5String and
/// T61String as bytes (Go reads T61String as Latin-1, which agrees for the
/// ASCII names certificates carry), BMPString as UTF-16.
fn text(tag: u8, contents: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x14 | 0x16 => String::from_utf8(contents.to_vec()).ok(),
        0x1e if contents.len() % 2 == 0 => {
            let units = contents
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// The contents of the element at the start of `input` if its tag is
/// `tag`, and what follows it.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = tlv(input)?;
    (found == tag).then_some((contents, rest))
}

/// One DER element at the start of `input`: its tag, its contents and what
/// follows it. Only single-byte tags and definite lengths of up to four
/// bytes, as DER certificates use.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| len << 8 | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SEQUENCE { SET { SEQUENCE { OID cn, UTF8String value } } }`.
    fn rdn(oid: &[u8], value: &[u8]) -> Vec<u8> {
        let mut attribute = vec![OID, oid.len() as u8];
        attribute.extend_from_slice(oid);
        attribute.extend_from_slice(&[0x0c, value.len() as u8]);
        attribute.extend_from_slice(value);
        let attribute = wrap(SEQUENCE, &attribute);
        wrap(SET, &attribute)
    }

    fn wrap(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.extend_from_slice(&[0x82, (contents.len() >> 8) as u8, contents.len() as u8]);
        }
        out.extend_from_slice(contents);
        out
    }

    /// A certificate skeleton with `subject` after four dummy fields.
    fn certificate(subject: &[u8], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend_from_slice(&[VERSION, 3, 0x02, 1, 2]);
        }
        tbs.extend_from_slice(&[0x02, 1, 7]); // serial
        tbs.extend_from_slice(&[SEQUENCE, 0]); // signature
        tbs.extend(wrap(SEQUENCE, &rdn(&COMMON_NAME, b"issuer")));
        tbs.extend_from_slice(&[SEQUENCE, 0]); // validity
        tbs.extend(wrap(SEQUENCE, subject));
        wrap(SEQUENCE, &wrap(SEQUENCE, &tbs))
    }

    #[test]
    fn reads_the_subjects_common_name_not_the_issuers() {
        let subject = rdn(&COMMON_NAME, b"member-1");
        assert_eq!(
            common_name(&certificate(&subject, true)).as_deref(),
            Some("member-1")
        );
        assert_eq!(
            common_name(&certificate(&subject, false)).as_deref(),
            Some("member-1")
        );
    }

    #[test]
    fn the_last_common_name_wins_as_in_go() {
        let mut subject = rdn(&COMMON_NAME, b"first");
        subject.extend(rdn(&[0x55, 0x04, 0x0a], b"org"));
        subject.extend(rdn(&COMMON_NAME, b"last"));
        assert_eq!(
            common_name(&certificate(&subject, true)).as_deref(),
            Some("last")
        );
    }

    #[test]
    fn no_common_name_is_none() {
        let subject = rdn(&[0x55, 0x04, 0x0a], b"org");
        assert_eq!(common_name(&certificate(&subject, true)), None);
    }

    #[test]
    fn malformed_input_is_none_never_a_panic() {
        let good = certificate(&rdn(&COMMON_NAME, b"member-1"), true);
        for len in 0..good.len() {
            assert_eq!(common_name(&good[..len]), None, "cut at {len}");
        }
        assert_eq!(common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
    }

    #[test]
    fn bmp_strings_are_utf16() {
        assert_eq!(text(0x1e, &[0, b'a', 0, b'b']).as_deref(), Some("ab"));
        assert_eq!(text(0x1e, &[0, b'a', 0]), None);
    }
}
