//! Per-endpoint allow-lists of function ARNs. `*` matches any run of
//! characters (including `:`), so `...:function:orders-*` also allows every
//! qualifier of those functions. A call for any other ARN is refused before
//! AWS is contacted.

use lambdagate_core::LambdaArn;

#[derive(Clone, Debug)]
pub struct AllowList {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
enum Pattern {
    Exact(String),
    /// The literal pieces between the `*`s.
    Glob(Vec<String>),
}

impl AllowList {
    /// Errors are `(index of the entry, message)`.
    pub fn new(entries: &[String]) -> Result<Self, (usize, String)> {
        let mut patterns = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if entry.contains('*') {
                if !entry.starts_with("arn:") || !entry.contains(":lambda:") {
                    return Err((
                        i,
                        format!(
                            "glob `{entry}` must be a Lambda function ARN pattern such as arn:aws:lambda:us-east-1:123456789012:function:orders-*"
                        ),
                    ));
                }
                patterns.push(Pattern::Glob(entry.split('*').map(str::to_owned).collect()));
            } else {
                LambdaArn::parse(entry).map_err(|e| (i, e.to_string()))?;
                patterns.push(Pattern::Exact(entry.clone()));
            }
        }
        Ok(AllowList { patterns })
    }

    /// Whether `arn` (as written by the caller, qualifier included) may be
    /// invoked. An exact entry without a qualifier also allows its
    /// qualified forms.
    pub fn allows(&self, arn: &LambdaArn) -> bool {
        let full = arn.to_string();
        let unqualified = arn.unqualified();
        self.patterns.iter().any(|p| match p {
            Pattern::Exact(e) => *e == full || *e == unqualified,
            Pattern::Glob(pieces) => glob_match(pieces, &full),
        })
    }

    /// Entries that name one function exactly (what `check --live` can
    /// look up with GetFunction).
    pub fn exact_entries(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().filter_map(|p| match p {
            Pattern::Exact(e) => Some(e.as_str()),
            Pattern::Glob(_) => None,
        })
    }
}

fn glob_match(pieces: &[String], text: &str) -> bool {
    let [first, middle @ .., last] = pieces else {
        return pieces.first().is_some_and(|p| p == text);
    };
    let Some(mut rest) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    for piece in middle {
        match rest.find(piece.as_str()) {
            Some(at) => rest = rest.get(at + piece.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::new(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn arn(s: &str) -> LambdaArn {
        LambdaArn::parse(s).unwrap()
    }

    #[test]
    fn exact_entries_allow_their_qualifiers_too() {
        let l = list(&["arn:aws:lambda:us-east-1:123456789012:function:a"]);
        assert!(l.allows(&arn("arn:aws:lambda:us-east-1:123456789012:function:a")));
        assert!(l.allows(&arn(
            "arn:aws:lambda:us-east-1:123456789012:function:a:live"
        )));
        assert!(!l.allows(&arn("arn:aws:lambda:us-east-1:123456789012:function:ab")));
    }

    #[test]
    fn qualified_entries_allow_only_that_qualifier() {
        let l = list(&["arn:aws:lambda:us-east-1:123456789012:function:a:live"]);
        assert!(l.allows(&arn(
            "arn:aws:lambda:us-east-1:123456789012:function:a:live"
        )));
        assert!(!l.allows(&arn("arn:aws:lambda:us-east-1:123456789012:function:a")));
        assert!(!l.allows(&arn("arn:aws:lambda:us-east-1:123456789012:function:a:2")));
    }

    #[test]
    fn globs() {
        let l = list(&["arn:aws:lambda:*:123456789012:function:orders-*"]);
        assert!(l.allows(&arn(
            "arn:aws:lambda:eu-west-1:123456789012:function:orders-get"
        )));
        assert!(l.allows(&arn(
            "arn:aws:lambda:us-east-1:123456789012:function:orders-get:7"
        )));
        assert!(!l.allows(&arn(
            "arn:aws:lambda:us-east-1:210987654321:function:orders-get"
        )));
        assert!(!l.allows(&arn("arn:aws:lambda:us-east-1:123456789012:function:users")));
        let all = list(&["arn:aws:lambda:*"]);
        assert!(all.allows(&arn("arn:aws:lambda:us-east-1:123456789012:function:x")));
    }

    #[test]
    fn bad_entries_are_refused_with_their_index() {
        let err = AllowList::new(&[
            "arn:aws:lambda:us-east-1:123456789012:function:a".into(),
            "*".into(),
        ])
        .unwrap_err();
        assert_eq!(err.0, 1);
        let err = AllowList::new(&["arn:aws:lambda:us-east-1:12:function:a".into()]).unwrap_err();
        assert!(err.1.contains("account `12`"), "{}", err.1);
    }
}
