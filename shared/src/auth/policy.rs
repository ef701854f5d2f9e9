//! The authorizer's answer and API Gateway's reading of it.
//!
//! An answer is an IAM policy (`principalId`, `policyDocument`, `context`,
//! `usageIdentifierKey`) or, where an HTTP API's authorizer allows simple
//! responses, `{"isAuthorized": bool, "context": {...}}`. A policy is
//! evaluated for one method ARN as API Gateway does: `execute-api:Invoke`
//! statements whose Resource matches (`*` any run of characters, `?` one),
//! an explicit Deny wins, and nothing matching is a deny.

use serde_json::{Map, Value};

/// An answer over this size is an authorizer failure: one answer cannot
/// fill the decision cache or blow up every event it is copied into.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A parsed authorizer answer, what the cache keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub principal_id: Option<String>,
    statements: Vec<Statement>,
    /// A simple response's `isAuthorized`; `None` for a policy.
    simple: Option<bool>,
    pub context: Map<String, Value>,
    pub usage_identifier_key: Option<String>,
    /// About what it takes in memory (the answer's size).
    pub size: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// The decision for one method ARN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// `explicit`: a Deny statement matched (else nothing allowed it).
    Deny {
        explicit: bool,
    },
}

/// How the answer is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerRules {
    /// The authorizer allows simple responses (HTTP API, payload 2.0).
    pub simple_responses: bool,
    /// A REST API's context: values are strings, numbers or booleans only.
    pub flat_context: bool,
}

fn strings(value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match value {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("a statement's {what} holds a non-string"))
            })
            .collect(),
        _ => Err(format!(
            "a statement has no {what} (a string or a list of strings)"
        )),
    }
}

impl Grant {
    /// Reads the authorizer function's result; `Err` says what is wrong
    /// (for the log: the client gets AUTHORIZER_FAILURE).
    pub fn parse(payload: &[u8], rules: AnswerRules) -> Result<Grant, String> {
        if payload.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is {} bytes, over the gateway's limit of {MAX_ANSWER_BYTES}",
                payload.len()
            ));
        }
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| format!("the answer is not JSON: {e}"))?;
        let Value::Object(mut answer) = value else {
            return Err("the answer is not a JSON object".to_owned());
        };
        let context = match answer.remove("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(context)) => context,
            Some(_) => return Err("`context` is not an object".to_owned()),
        };
        if rules.flat_context
            && let Some((key, _)) = context
                .iter()
                .find(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean()))
        {
            return Err(format!(
                "context value `{key}` is not a string, number or boolean (a REST API's authorizer context allows only those)"
            ));
        }
        let usage_identifier_key = match answer.remove("usageIdentifierKey") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) => Some(key),
            Some(_) => return Err("`usageIdentifierKey` is not a string".to_owned()),
        };
        if rules.simple_responses && answer.contains_key("isAuthorized") {
            let Some(Value::Bool(allowed)) = answer.get("isAuthorized") else {
                return Err("`isAuthorized` is not a boolean".to_owned());
            };
            return Ok(Grant {
                principal_id: None,
                statements: Vec::new(),
                simple: Some(*allowed),
                context,
                usage_identifier_key,
                size: payload.len(),
            });
        }
        let principal_id = match answer.get("principalId") {
            Some(Value::String(id)) => id.clone(),
            // API Gateway accepts a number and uses its text.
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(if rules.simple_responses {
                    "neither `isAuthorized` (a simple response) nor `principalId` (a policy)"
                        .to_owned()
                } else {
                    "no `principalId`".to_owned()
                });
            }
        };
        let Some(Value::Object(document)) = answer.get("policyDocument") else {
            return Err("no `policyDocument` object".to_owned());
        };
        let statements = match document.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err("the policy document has no `Statement` list".to_owned()),
        };
        let statements = statements
            .into_iter()
            .map(|statement| {
                let allow = match statement.get("Effect").and_then(Value::as_str) {
                    Some(e) if e.eq_ignore_ascii_case("allow") => true,
                    Some(e) if e.eq_ignore_ascii_case("deny") => false,
                    _ => return Err("a statement's Effect is neither Allow nor Deny".to_owned()),
                };
                Ok(Statement {
                    allow,
                    actions: strings(statement.get("Action"), "Action")?,
                    resources: strings(statement.get("Resource"), "Resource")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Grant {
            principal_id: Some(principal_id),
            statements,
            simple: None,
            context,
            usage_identifier_key,
            size: payload.len(),
        })
    }

    /// The decision for one method ARN
    /// (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/{VERB}/{path}`).
    pub fn verdict(&self, method_arn: &str) -> Verdict {
        if let Some(allowed) = self.simple {
            return if allowed {
                Verdict::Allow
            } else {
                Verdict::Deny { explicit: false }
            };
        }
        let applies = |s: &&Statement| {
            s.actions
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), "execute-api:invoke"))
                && s.resources.iter().any(|r| glob(r, method_arn))
        };
        let matching: Vec<&Statement> = self.statements.iter().filter(applies).collect();
        if matching.iter().any(|s| !s.allow) {
            Verdict::Deny { explicit: true }
        } else if matching.iter().any(|s| s.allow) {
            Verdict::Allow
        } else {
            Verdict::Deny { explicit: false }
        }
    }
}

/// IAM's wildcard match: `*` any run of characters (`/` included), `?`
/// exactly one; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it had taken.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/GET/pets/7";
    const POLICY: AnswerRules = AnswerRules {
        simple_responses: false,
        flat_context: true,
    };

    fn policy(statements: Value) -> Grant {
        let answer = serde_json::json!({
            "principalId": "user-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": statements},
            "context": {"tier": "gold", "n": 1, "ok": true},
        });
        Grant::parse(answer.to_string().as_bytes(), POLICY).unwrap()
    }

    fn statement(effect: &str, resource: &str) -> Value {
        serde_json::json!({"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource})
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(glob("*", ARN));
        assert!(glob(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/*/GET/*",
            ARN
        ));
        assert!(glob(
            "arn:aws:execute-api:*:*:abc123/$default/GET/pets/?",
            ARN
        ));
        assert!(!glob(
            "arn:aws:execute-api:*:*:abc123/$default/GET/pets/??",
            ARN
        ));
        assert!(!glob(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/*/POST/*",
            ARN
        ));
        assert!(glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
        assert!(glob("", "") && !glob("", "x") && glob("**", ""));
    }

    #[test]
    fn an_explicit_deny_wins_and_nothing_matching_denies() {
        let allow = statement("Allow", "arn:aws:execute-api:*:*:abc123/*/GET/*");
        let deny = statement("Deny", "arn:aws:execute-api:*:*:abc123/*/*/pets/7");
        assert_eq!(
            policy(serde_json::json!([allow])).verdict(ARN),
            Verdict::Allow
        );
        // A single statement object (not a list) is read too.
        assert_eq!(policy(allow.clone()).verdict(ARN), Verdict::Allow);
        assert_eq!(
            policy(serde_json::json!([allow.clone(), deny])).verdict(ARN),
            Verdict::Deny { explicit: true }
        );
        let other = statement("Allow", "arn:aws:execute-api:*:*:abc123/*/POST/*");
        assert_eq!(
            policy(serde_json::json!([other])).verdict(ARN),
            Verdict::Deny { explicit: false }
        );
        // Another action does not allow invoking.
        let other_action = serde_json::json!({"Action": ["execute-api:ManageConnections"], "Effect": "Allow", "Resource": "*"});
        assert_eq!(
            policy(serde_json::json!([other_action])).verdict(ARN),
            Verdict::Deny { explicit: false }
        );
        let any_action = serde_json::json!({"Action": "execute-api:*", "Effect": "Allow", "Resource": ["x", "*"]});
        assert_eq!(
            policy(serde_json::json!([any_action])).verdict(ARN),
            Verdict::Allow
        );
    }

    #[test]
    fn malformed_answers_are_refused_with_the_reason() {
        for (answer, reason) in [
            ("not json", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"policyDocument": {}}"#, "no `principalId`"),
            (r#"{"principalId": "u"}"#, "no `policyDocument`"),
            (
                r#"{"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}}"#,
                "neither Allow nor Deny",
            ),
            (
                r#"{"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Allow", "Resource": "*"}]}}"#,
                "no Action",
            ),
            (
                r#"{"principalId": "u", "policyDocument": {"Statement": []}, "context": {"o": {"a": 1}}}"#,
                "context value `o`",
            ),
            (r#"{"isAuthorized": true}"#, "no `principalId`"),
        ] {
            let e = Grant::parse(answer.as_bytes(), POLICY).unwrap_err();
            assert!(e.contains(reason), "{answer}: {e}");
        }
        let big = format!(r#"{{"principalId": "{}"}}"#, "x".repeat(MAX_ANSWER_BYTES));
        assert!(
            Grant::parse(big.as_bytes(), POLICY)
                .unwrap_err()
                .contains("over")
        );
    }

    #[test]
    fn simple_responses_decide_alone_and_keep_typed_context() {
        let rules = AnswerRules {
            simple_responses: true,
            flat_context: false,
        };
        let yes = Grant::parse(
            br#"{"isAuthorized": true, "context": {"list": [1, 2], "obj": {"a": 1}}}"#,
            rules,
        )
        .unwrap();
        assert_eq!(yes.verdict(ARN), Verdict::Allow);
        assert_eq!(yes.context["obj"]["a"], 1);
        let no = Grant::parse(br#"{"isAuthorized": false}"#, rules).unwrap();
        assert_eq!(no.verdict(ARN), Verdict::Deny { explicit: false });
        assert!(Grant::parse(br#"{"isAuthorized": "yes"}"#, rules).is_err());
        // A policy is still read where simple responses are allowed.
        let policy = br#"{"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}]}}"#;
        assert_eq!(
            Grant::parse(policy, rules).unwrap().verdict(ARN),
            Verdict::Allow
        );
    }
}
