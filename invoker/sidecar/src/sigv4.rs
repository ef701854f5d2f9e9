//! AWS Signature Version 4 for the one request shape the invoker sends on
//! its hot path: a POST with a handful of headers and a body (Lambda
//! Invoke). The key derivation and the final HMAC are `aws-sigv4`'s; the
//! canonical request is written here because the general signer builds it
//! from a header map with an allocation per header and recomputes the
//! signing key (four HMACs) on every call. The key changes once a day per
//! credentials and region, so it is cached.
//!
//! The tests check every signature against `aws-sigv4`'s own signer.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The instant a request is signed at, with the two UTC forms SigV4 uses:
/// `YYYYMMDD` (the credential scope) and `YYYYMMDD'T'HHMMSS'Z'`
/// (`x-amz-date`).
pub struct SigningTime {
    pub time: SystemTime,
    pub date: String,
    pub date_time: String,
}

impl SigningTime {
    pub fn new(time: SystemTime) -> Self {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let days = i64::try_from(secs / 86_400).unwrap_or_default();
        let rem = secs % 86_400;
        let (y, m, d) = lambdagate_core::time::civil_from_days(days);
        let date = format!("{y:04}{m:02}{d:02}");
        let date_time = format!(
            "{date}T{:02}{:02}{:02}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        );
        SigningTime {
            time,
            date,
            date_time,
        }
    }
}

/// Lowercase hex SHA-256, as SigV4 hashes payloads and canonical requests.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    let digit = |nibble: u8| char::from_digit(u32::from(nibble), 16).unwrap_or('0');
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0x0f));
    }
    out
}

/// RFC 3986 percent-encoding as SigV4 wants it: everything but
/// `A-Z a-z 0-9 - _ . ~` becomes `%XX` (uppercase hex).
pub fn uri_encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// What is signed. `headers` are lowercase names with trimmed values,
/// sorted by name, and must include `host` and `x-amz-date`.
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// The path as sent (each segment already percent-encoded once).
    pub path: &'a str,
    /// The canonical query string (`k=v&...`, sorted, encoded), or "".
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_sha256: &'a str,
}

/// Signs requests for one service, caching the derived key.
pub struct Signer {
    service: &'static str,
    cached_key: Mutex<Option<CachedKey>>,
}

struct CachedKey {
    access_key_id: String,
    secret: String,
    date: String,
    region: String,
    key: Vec<u8>,
}

impl Signer {
    pub fn new(service: &'static str) -> Self {
        Signer {
            service,
            cached_key: Mutex::new(None),
        }
    }

    /// The `authorization` header value for `request`, signed at `at`
    /// (whose `date_time` must be the request's `x-amz-date`) for `region`.
    pub fn authorization(
        &self,
        credentials: &Credentials,
        region: &str,
        at: &SigningTime,
        request: &SignableRequest<'_>,
    ) -> String {
        let (date, date_time) = (&at.date, &at.date_time);
        let mut canonical = String::with_capacity(512);
        canonical.push_str(request.method);
        canonical.push('\n');
        // Every service but S3 signs the path encoded a second time.
        for segment in request.path.split('/').skip(1) {
            canonical.push('/');
            uri_encode(segment, &mut canonical);
        }
        if request.path.is_empty() {
            canonical.push('/');
        }
        canonical.push('\n');
        canonical.push_str(request.query);
        canonical.push('\n');
        let mut signed_headers = String::with_capacity(96);
        for (name, value) in request.headers {
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(value);
            canonical.push('\n');
            if !signed_headers.is_empty() {
                signed_headers.push(';');
            }
            signed_headers.push_str(name);
        }
        canonical.push('\n');
        canonical.push_str(&signed_headers);
        canonical.push('\n');
        canonical.push_str(request.payload_sha256);

        let scope = format!("{date}/{region}/{}/aws4_request", self.service);
        let string_to_sign = format!(
            "{ALGORITHM}\n{date_time}\n{scope}\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let signature = self.with_key(credentials, region, at, |key| {
            aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes())
        });
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id()
        )
    }

    fn with_key<T>(
        &self,
        credentials: &Credentials,
        region: &str,
        at: &SigningTime,
        sign: impl FnOnce(&[u8]) -> T,
    ) -> T {
        let fits = |k: &CachedKey| {
            k.date == at.date
                && k.region == region
                && k.access_key_id == credentials.access_key_id()
                && k.secret == credentials.secret_access_key()
        };
        // A poisoned lock only means another thread panicked mid-update;
        // the key is then derived afresh.
        let mut cached = self.cached_key.lock().ok();
        if let Some(Some(k)) = cached.as_deref()
            && fits(k)
        {
            return sign(&k.key);
        }
        let key = aws_sigv4::sign::v4::generate_signing_key(
            credentials.secret_access_key(),
            at.time,
            region,
            self.service,
        )
        .as_ref()
        .to_vec();
        let result = sign(&key);
        if let Some(slot) = cached.as_deref_mut() {
            *slot = Some(CachedKey {
                access_key_id: credentials.access_key_id().to_owned(),
                secret: credentials.secret_access_key().to_owned(),
                date: at.date.clone(),
                region: region.to_owned(),
                key,
            });
        }
        result
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sigv4::http_request::{SignableBody, SignableRequest as AwsSignable, SigningSettings};
    use aws_smithy_types::date_time::{DateTime, Format};
    use std::time::Duration;

    #[test]
    fn dates_match_the_smithy_formatter() {
        // Leap days, year ends, the epoch and far futures.
        let mut secs = 0u64;
        while secs < 5_000_000_000 {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            let iso = DateTime::from(t).fmt(Format::DateTime).unwrap();
            let compact: String = iso.chars().filter(|c| c.is_ascii_digit()).collect();
            let at = SigningTime::new(t);
            assert_eq!(
                at.date_time,
                format!("{}T{}Z", &compact[..8], &compact[8..14])
            );
            assert_eq!(at.date, &compact[..8]);
            secs += 86_399 * 7 + 12_345;
        }
    }

    /// The reference: aws-sigv4's general signer, on the same request.
    pub(crate) fn reference_authorization(
        creds: &Credentials,
        region: &str,
        time: SystemTime,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> String {
        let identity = creds.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("lambda")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = AwsSignable::new(
            "POST",
            uri,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .unwrap()
            .into_parts();
        let (headers, _) = instructions.into_parts();
        headers
            .into_iter()
            .find(|h| h.name() == "authorization")
            .unwrap()
            .value()
            .to_owned()
    }

    #[test]
    fn signatures_match_aws_sigv4() {
        let signer = Signer::new("lambda");
        let cases = [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:hello",
                None,
                None,
            ),
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:my-fn_2",
                Some("$LATEST"),
                Some("FQoGZXIvYXdzEBYaDH+/token=="),
            ),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:f",
                Some("live"),
                None,
            ),
        ];
        let mut time = UNIX_EPOCH + Duration::from_secs(1_764_028_800);
        for (round, (arn, qualifier, token)) in cases.iter().cycle().take(9).enumerate() {
            let region = arn.split(':').nth(3).unwrap();
            let creds = Credentials::new(
                format!("AKIDEXAMPLE{round}"),
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                token.map(str::to_owned),
                None,
                "test",
            );
            let mut path = String::from("/2015-03-31/functions/");
            uri_encode(arn, &mut path);
            path.push_str("/invocations");
            let mut query = String::new();
            if let Some(q) = qualifier {
                query.push_str("Qualifier=");
                uri_encode(q, &mut query);
            }
            let uri = if query.is_empty() {
                format!("http://127.0.0.1:4566{path}")
            } else {
                format!("http://127.0.0.1:4566{path}?{query}")
            };
            let body = format!("{{\"round\":{round}}}");
            let at = SigningTime::new(time);
            let mut headers = vec![
                ("content-type", "application/octet-stream"),
                ("host", "127.0.0.1:4566"),
                ("x-amz-date", at.date_time.as_str()),
                ("x-amz-invocation-type", "RequestResponse"),
            ];
            if let Some(t) = token {
                headers.push(("x-amz-security-token", t));
            }
            let ours = signer.authorization(
                &creds,
                region,
                &at,
                &SignableRequest {
                    method: "POST",
                    path: &path,
                    query: &query,
                    headers: &headers,
                    payload_sha256: &sha256_hex(body.as_bytes()),
                },
            );
            // The reference adds x-amz-date and the token itself.
            let without_added: Vec<_> = headers
                .iter()
                .copied()
                .filter(|(n, _)| *n != "x-amz-date" && *n != "x-amz-security-token")
                .collect();
            let reference = reference_authorization(
                &creds,
                region,
                time,
                &uri,
                &without_added,
                body.as_bytes(),
            );
            assert_eq!(ours, reference, "case {round}: {arn} {qualifier:?}");
            // Next round: another day and time, so cached keys must change.
            time += Duration::from_secs(86_400 * (round as u64 % 2) + 3_601);
        }
    }
}
