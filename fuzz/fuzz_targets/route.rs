//! The URI-template parser and the router (`lambdagate_core::route`).
//!
//! Templates and contexts come from the input; those that parse are built
//! into a route table and fuzzed requests are routed through it. The
//! outcome is checked against an oracle made of the table's own pieces one
//! at a time (a one-route table answers "does this template match this
//! path with this method"), so the checks are about how routes are
//! combined: which API, which resource, 404 vs 405, the Allow list, and
//! the parameters.
#![no_main]

use arbitrary::Arbitrary;
use lambdagate_core::config::route::{
    ApiRoutes, RouteMatch, RouteTable, Template, validate_context,
};
use lambdagate_core::url::decode_path;
use lambdagate_core::{Verb, config::route::TemplateError};
use libfuzzer_sys::fuzz_target;
use std::cmp::Ordering;

#[derive(Arbitrary, Debug)]
struct Input {
    apis: Vec<Api>,
    requests: Vec<Request>,
}

#[derive(Arbitrary, Debug)]
struct Api {
    context: Piece,
    resources: Vec<(u8, Piece)>,
}

#[derive(Arbitrary, Debug)]
struct Request {
    method: u8,
    /// Index of an API whose context is put in front of `path` (so that
    /// requests reach the templates more often than by chance).
    prefix: Option<u8>,
    path: Piece,
}

/// A string, either free or glued from pieces that matter to templates and
/// percent-decoding.
#[derive(Arbitrary, Debug)]
enum Piece {
    Free(String),
    Glued(Vec<u8>),
}

const PIECES: &[&str] = &[
    "/", "/", "/", "a", "b", "user", "{id}", "{p+}", "{a}", "{b+}", "%", "%2F", "%2f", "%41",
    "%C3%A9", "%FF", "%zz", "é", "A", "+", "{", "}", "{}", "?", "%25", ".", "..", "", "%00", ":",
];

impl Piece {
    fn text(&self) -> String {
        match self {
            Piece::Free(s) => s.clone(),
            Piece::Glued(ix) => ix
                .iter()
                .map(|&i| PIECES[usize::from(i) % PIECES.len()])
                .collect(),
        }
    }
}

const VERBS: [Verb; 8] = [
    Verb::Get,
    Verb::Post,
    Verb::Put,
    Verb::Delete,
    Verb::Patch,
    Verb::Head,
    Verb::Options,
    Verb::Any,
];
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "get", "",
];

/// One resource as declared: API index, declaration index, verb, template.
struct Declared {
    api: usize,
    index: usize,
    verb: Verb,
    template: Template,
}

fn check_template(text: &str) -> Result<Template, TemplateError> {
    let parsed = Template::parse(text);
    match &parsed {
        Ok(t) => {
            assert_eq!(t.as_str(), text);
            let names: Vec<&str> = t.param_names().collect();
            for (i, n) in names.iter().enumerate() {
                assert!(!n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                assert!(!names[..i].contains(n), "{text}: `{n}` twice");
            }
            assert!(t.same_shape(t));
            assert_eq!(t.cmp_specificity(t), Ordering::Equal);
        }
        Err(e) => assert!(e.to_string().contains("is not a valid URI template"), "{e}"),
    }
    parsed
}

/// The rest of `path` after `context` when the context covers it: its
/// segments equal the path's first segments, each percent-decoded (as the
/// resources are matched, so `/%75sers` is `/users`).
fn context_rest<'p>(context: &str, path: &'p str) -> Option<&'p str> {
    let after_slash = path.strip_prefix('/')?;
    if context == "/" {
        return Some(path);
    }
    let segments: Vec<&str> = after_slash.split('/').collect();
    let mut end = 0;
    for (i, wanted) in context.split('/').skip(1).enumerate() {
        let segment = segments.get(i)?;
        if decode_path(segment) != wanted {
            return None;
        }
        end += 1 + segment.len();
    }
    Some(&path[end..])
}

/// The template with its parameters put back, compared with the path's
/// rest decoded segment by segment (slashes kept).
fn substituted(template: &Template, params: &[(String, String)]) -> String {
    let mut values = params.iter();
    let mut out = String::new();
    for segment in template.as_str().split('/').skip(1) {
        out.push('/');
        if segment.starts_with('{') {
            let (_, value) = values.next().expect("a value for every parameter");
            out.push_str(value);
        } else {
            out.push_str(segment);
        }
    }
    assert!(values.next().is_none(), "more params than the template has");
    if out.is_empty() { "/".to_owned() } else { out }
}

fn decoded_rest(rest: &str) -> String {
    if rest.is_empty() || rest == "/" {
        return "/".to_owned();
    }
    rest.split('/')
        .map(|s| decode_path(s).into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn single(context: &str, verb: Verb, template: &Template) -> RouteTable<()> {
    RouteTable::new(vec![ApiRoutes::new(
        context.to_owned(),
        vec![(verb, template.clone(), ())],
    )])
}

fuzz_target!(|input: Input| {
    let mut contexts: Vec<String> = Vec::new();
    let mut declared: Vec<Declared> = Vec::new();
    for api in input.apis.iter().take(6) {
        let context = api.context.text();
        let ok = validate_context(&context);
        if let Err(e) = &ok {
            assert!(e.contains(&format!("`{context}`")), "{e}");
        }
        if ok.is_err() || contexts.contains(&context) {
            continue;
        }
        let a = contexts.len();
        contexts.push(context);
        let mut index = 0;
        for (verb, template) in api.resources.iter().take(12) {
            let Ok(template) = check_template(&template.text()) else {
                continue;
            };
            let verb = VERBS[usize::from(*verb) % VERBS.len()];
            declared.push(Declared {
                api: a,
                index,
                verb,
                template,
            });
            index += 1;
        }
    }
    let table = RouteTable::new(
        contexts
            .iter()
            .enumerate()
            .map(|(a, context)| {
                ApiRoutes::new(
                    context.clone(),
                    declared
                        .iter()
                        .filter(|d| d.api == a)
                        .map(|d| (d.verb, d.template.clone(), (a, d.index)))
                        .collect(),
                )
            })
            .collect(),
    );

    for request in input.requests.iter().take(16) {
        let method = METHODS[usize::from(request.method) % METHODS.len()];
        let mut path = match request.prefix {
            Some(i) if !contexts.is_empty() => {
                let c = &contexts[usize::from(i) % contexts.len()];
                if c == "/" { String::new() } else { c.clone() }
            }
            _ => String::new(),
        };
        path.push_str(&request.path.text());
        let outcome = table.find(method, &path);

        // 1. The API: the longest context that covers the path.
        let api = (0..contexts.len())
            .filter(|&a| context_rest(&contexts[a], &path).is_some())
            .max_by_key(|&a| contexts[a].len());
        let Some(api) = api else {
            assert_eq!(outcome, RouteMatch::Outside, "{method} {path}");
            continue;
        };
        let context = &contexts[api];
        let rest = context_rest(context, &path).unwrap_or_default();

        // 2. Which of its resources match the path, and with the method.
        let resources: Vec<&Declared> = declared.iter().filter(|d| d.api == api).collect();
        let by_path: Vec<&Declared> = resources
            .iter()
            .copied()
            .filter(|d| {
                matches!(
                    single(context, Verb::Any, &d.template).find(method, &path),
                    RouteMatch::Found { .. }
                )
            })
            .collect();
        let with_method: Vec<&Declared> = by_path
            .iter()
            .copied()
            .filter(|d| d.verb.matches(method))
            .collect();
        for d in &by_path {
            // The one-route table agrees with Verb::matches.
            let alone_table = single(context, d.verb, &d.template);
            let alone = alone_table.find(method, &path);
            assert_eq!(
                matches!(alone, RouteMatch::Found { .. }),
                d.verb.matches(method),
                "{} {} vs {method} {path}: {alone:?}",
                d.verb,
                d.template
            );
        }

        // 3. The most specific first: template order, explicit verb before ANY,
        //    then declaration order.
        let best = with_method.iter().copied().min_by(|x, y| {
            x.template
                .cmp_specificity(&y.template)
                .then_with(|| (x.verb == Verb::Any).cmp(&(y.verb == Verb::Any)))
                .then_with(|| x.index.cmp(&y.index))
        });
        match (best, outcome) {
            (Some(best), RouteMatch::Found { target, params }) => {
                assert_eq!(
                    *target,
                    (api, best.index),
                    "{method} {path}: got {target:?}, expected {} {}",
                    best.verb,
                    best.template
                );
                let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, best.template.param_names().collect::<Vec<_>>());
                for (name, value) in &params {
                    assert!(!value.is_empty(), "{path}: empty `{name}`");
                }
                assert_eq!(
                    substituted(&best.template, &params),
                    decoded_rest(rest),
                    "{method} {path} via {}: {params:?}",
                    best.template
                );
            }
            (None, RouteMatch::NotFound) => {
                assert!(
                    by_path.is_empty(),
                    "{method} {path}: 404 but a template matches"
                );
            }
            (None, RouteMatch::MethodNotAllowed { allow }) => {
                assert!(
                    !by_path.is_empty(),
                    "{method} {path}: 405 but nothing matches"
                );
                let mut expected: Vec<Verb> = by_path
                    .iter()
                    .flat_map(|d| {
                        if d.verb == Verb::Any {
                            Verb::METHODS.to_vec()
                        } else {
                            vec![d.verb]
                        }
                    })
                    .collect();
                expected.sort_by_key(|v| v.as_str());
                expected.dedup();
                assert_eq!(allow, expected, "{method} {path}");
                assert!(!allow.contains(&Verb::Any));
            }
            (best, outcome) => panic!(
                "{method} {path}: got {outcome:?}, expected {:?}",
                best.map(|b| (b.verb, b.template.as_str()))
            ),
        }
    }
});
