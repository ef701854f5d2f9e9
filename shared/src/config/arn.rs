//! Lambda function ARNs:
//! `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
//!
//! The region inside the ARN decides which regional Lambda endpoint is
//! called; the qualifier (alias, version or `$LATEST`) is sent as Lambda's
//! `Qualifier` parameter.

use std::fmt;
use std::str::FromStr;

const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// The expected shape, quoted in every error so the fix is obvious.
pub const ARN_SHAPE: &str =
    "arn:aws:lambda:<region>:<12-digit account>:function:<name>[:<alias or version>]";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LambdaArn {
    partition: String,
    region: String,
    account: String,
    function_name: String,
    qualifier: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{arn}` is not a valid Lambda function ARN: {reason}; expected {ARN_SHAPE}")]
pub struct ArnError {
    arn: String,
    reason: String,
}

impl LambdaArn {
    pub fn parse(arn: &str) -> Result<Self, ArnError> {
        let fail = |reason: String| ArnError {
            arn: arn.to_owned(),
            reason,
        };
        let parts: Vec<&str> = arn.split(':').collect();
        let (prefix, partition, service, region, account, resource, name, qualifier) = match parts
            .as_slice()
        {
            [p, pa, s, r, a, res, n] => (*p, *pa, *s, *r, *a, *res, *n, None),
            [p, pa, s, r, a, res, n, q] => (*p, *pa, *s, *r, *a, *res, *n, Some(*q)),
            _ => {
                return Err(fail(format!(
                    "it has {} colon-separated parts, a function ARN has 7 (8 with a qualifier)",
                    parts.len()
                )));
            }
        };
        if prefix != "arn" {
            return Err(fail("it must start with `arn:`".into()));
        }
        if !PARTITIONS.contains(&partition) {
            return Err(fail(format!(
                "partition `{partition}` is unknown (allowed: {})",
                PARTITIONS.join(", ")
            )));
        }
        if service != "lambda" {
            return Err(fail(format!("service is `{service}`, not `lambda`")));
        }
        if !is_region(region) {
            return Err(fail(format!(
                "region `{region}` is not a region name like us-east-1"
            )));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(format!(
                "account `{account}` is not a 12-digit AWS account id"
            )));
        }
        if resource != "function" {
            return Err(fail(format!(
                "resource type is `{resource}`, not `function`"
            )));
        }
        if !is_name(name, 64) {
            return Err(fail(format!(
                "function name `{name}` must be 1-64 letters, digits, `-` or `_`"
            )));
        }
        if let Some(q) = qualifier
            && q != "$LATEST"
            && !is_name(q, 128)
        {
            return Err(fail(format!(
                "qualifier `{q}` must be `$LATEST`, a version number or an alias of 1-128 letters, digits, `-` or `_`"
            )));
        }
        Ok(LambdaArn {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            function_name: name.to_owned(),
            qualifier: qualifier.map(str::to_owned),
        })
    }

    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    pub fn qualifier(&self) -> Option<&str> {
        self.qualifier.as_deref()
    }

    /// The ARN without its qualifier: what Lambda's `FunctionName` takes
    /// when the qualifier is passed separately.
    pub fn unqualified(&self) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account, self.function_name
        )
    }
}

impl fmt::Display for LambdaArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.unqualified())?;
        if let Some(q) = &self.qualifier {
            write!(f, ":{q}")?;
        }
        Ok(())
    }
}

impl FromStr for LambdaArn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LambdaArn::parse(s)
    }
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-2`, ...:
/// lowercase words joined by `-`, the first two letters, the last a number.
pub fn is_region(region: &str) -> bool {
    let words: Vec<&str> = region.split('-').collect();
    let [first, middle @ .., last] = words.as_slice() else {
        return false;
    };
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.len() <= 2
        && last.bytes().all(|b| b.is_ascii_digit())
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_function_arn() {
        let arn =
            LambdaArn::parse("arn:aws:lambda:eu-west-1:123456789012:function:get-user").unwrap();
        assert_eq!(arn.region(), "eu-west-1");
        assert_eq!(arn.account(), "123456789012");
        assert_eq!(arn.function_name(), "get-user");
        assert_eq!(arn.qualifier(), None);
        assert_eq!(
            arn.to_string(),
            "arn:aws:lambda:eu-west-1:123456789012:function:get-user"
        );
    }

    #[test]
    fn keeps_alias_version_and_latest_qualifiers() {
        for q in ["live", "7", "$LATEST", "blue_green-2"] {
            let text = format!("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f:{q}");
            let arn = LambdaArn::parse(&text).unwrap();
            assert_eq!(arn.qualifier(), Some(q));
            assert_eq!(
                arn.unqualified(),
                "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f"
            );
            assert_eq!(arn.to_string(), text);
        }
    }

    #[test]
    fn every_malformed_part_is_named() {
        let cases = [
            (
                "arn:aws:lambda:us-east-1:123456789012:function",
                "colon-separated parts",
            ),
            (
                "urn:aws:lambda:us-east-1:123456789012:function:f",
                "must start with `arn:`",
            ),
            (
                "arn:amazon:lambda:us-east-1:123456789012:function:f",
                "partition `amazon`",
            ),
            (
                "arn:aws:s3:us-east-1:123456789012:function:f",
                "service is `s3`",
            ),
            (
                "arn:aws:lambda:useast1:123456789012:function:f",
                "region `useast1`",
            ),
            (
                "arn:aws:lambda:US-EAST-1:123456789012:function:f",
                "region `US-EAST-1`",
            ),
            ("arn:aws:lambda:us-east-1:1234:function:f", "account `1234`"),
            (
                "arn:aws:lambda:us-east-1:123456789012:layer:f",
                "resource type is `layer`",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:my.fn",
                "function name `my.fn`",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f:",
                "qualifier ``",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f:a/b",
                "qualifier `a/b`",
            ),
        ];
        for (text, expected) in cases {
            let err = LambdaArn::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains(ARN_SHAPE), "{text}: {err}");
        }
    }

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "cn-north-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "eu-central-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "us-east-x",
            "useast-1",
            "us--1",
            "us-East-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
