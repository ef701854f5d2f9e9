//! Routing: which API and which resource a request belongs to.
//!
//! # The rule
//!
//! 1. **API.** The API whose context is a path-segment prefix of the
//!    request path wins; with several, the longest context wins (`/users/admin`
//!    before `/users`; context `/` covers every path). `/users` covers
//!    `/users` and `/users/...` but not `/usersx`. No API → [`RouteMatch::Outside`]:
//!    the request is none of lambdagate's business.
//! 2. **Resource.** The rest of the path (after the context) is split on `/`
//!    and each segment is percent-decoded. A template matches when every
//!    literal segment equals the decoded path segment, every `{param}` gets a
//!    non-empty segment, a final `{name+}` gets the non-empty rest of the path
//!    (decoded, slashes kept), and no segment is left over. A trailing slash
//!    is a segment of its own, so `/user/7/` does not match `/user/{id}`;
//!    an empty rest (`/users`) and `/` (`/users/`) both match the template `/`.
//! 3. **Most specific first.** Matching templates are tried in this order:
//!    * compare segment by segment from the left: a literal beats a
//!      `{param}`, which beats a `{greedy+}`; the first difference decides;
//!    * when one template is a prefix of the other in that sense, the one
//!      with more segments wins;
//!    * on equal templates a resource with an explicit verb beats `ANY`;
//!    * then declaration order.
//!
//!    The first resource in that order whose verb matches the method wins
//!    ([`RouteMatch::Found`]). `ANY` matches every method; `HEAD` does not
//!    match `GET`.
//! 4. Templates match but none has the method → [`RouteMatch::MethodNotAllowed`]
//!    with every verb of those templates (sorted, deduplicated; `ANY` stands
//!    for all seven). No template matches → [`RouteMatch::NotFound`].

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use crate::url::decode_path;

/// The HTTP verb of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
    Any,
}

/// What a verb may be, quoted in errors.
pub const VERB_CHOICES: &str = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS or ANY";

impl Verb {
    /// The seven methods `ANY` stands for.
    pub const METHODS: [Verb; 7] = [
        Verb::Get,
        Verb::Post,
        Verb::Put,
        Verb::Delete,
        Verb::Patch,
        Verb::Head,
        Verb::Options,
    ];

    /// Parses a verb, ignoring ASCII case (`get` is `GET`).
    pub fn parse(text: &str) -> Option<Verb> {
        [Verb::Any]
            .into_iter()
            .chain(Verb::METHODS)
            .find(|v| v.as_str().eq_ignore_ascii_case(text))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
            Verb::Patch => "PATCH",
            Verb::Head => "HEAD",
            Verb::Options => "OPTIONS",
            Verb::Any => "ANY",
        }
    }

    /// Whether a request method (case-sensitive, as HTTP says) matches.
    pub fn matches(self, method: &str) -> bool {
        self == Verb::Any || self.as_str() == method
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    /// Lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }

    /// Equal for matching purposes (parameter names do not matter).
    fn same_shape(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Param(_), Segment::Param(_)) | (Segment::Greedy(_), Segment::Greedy(_)) => {
                true
            }
            _ => false,
        }
    }
}

/// What a template looks like, quoted in errors.
pub const TEMPLATE_SHAPE: &str = "a path starting with `/`, such as `/user/{id}` or `/files/{path+}`: \
segments of letters, digits and -._~!$&'()*+,;=:@, whole-segment `{name}` parameters \
(name of letters, digits, `_`), and at most one greedy `{name+}` as the last segment";

/// A parsed URI template such as `/user/{id}` or `/files/{path+}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{template}` is not a valid URI template: {reason}; expected {TEMPLATE_SHAPE}")]
pub struct TemplateError {
    template: String,
    reason: String,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let fail = |reason: String| TemplateError {
            template: text.to_owned(),
            reason,
        };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(fail("it must start with `/`".into()));
        };
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let count = rest.split('/').count();
            for (i, raw) in rest.split('/').enumerate() {
                let segment = parse_segment(raw).map_err(&fail)?;
                if matches!(segment, Segment::Greedy(_)) && i + 1 != count {
                    return Err(fail(format!(
                        "the greedy parameter `{raw}` must be the last segment"
                    )));
                }
                segments.push(segment);
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for segment in &segments {
            if let Segment::Param(name) | Segment::Greedy(name) = segment {
                if names.contains(&name.as_str()) {
                    return Err(fail(format!("the parameter name `{name}` is used twice")));
                }
                names.push(name);
            }
        }
        Ok(Template {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parameter names in template order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(n) | Segment::Greedy(n) => Some(n.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// True when both templates match exactly the same paths (they differ
    /// at most in parameter names).
    pub fn same_shape(&self, other: &Template) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| a.same_shape(b))
    }

    /// The specificity order of the module documentation: `Less` means
    /// `self` is tried first.
    pub fn cmp_specificity(&self, other: &Template) -> Ordering {
        for (a, b) in self.segments.iter().zip(&other.segments) {
            match a.rank().cmp(&b.rank()) {
                Ordering::Equal => {}
                decided => return decided,
            }
        }
        // More segments first.
        other.segments.len().cmp(&self.segments.len())
    }

    fn matches(&self, segs: &[PathSegment<'_>], rest: &str) -> bool {
        let mut path = segs.iter();
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => match path.next() {
                    Some(s) if s.decoded == literal.as_str() => {}
                    _ => return false,
                },
                Segment::Param(_) => match path.next() {
                    Some(s) if !s.raw.is_empty() => {}
                    _ => return false,
                },
                Segment::Greedy(_) => {
                    return path
                        .next()
                        .and_then(|s| rest.get(s.start..))
                        .is_some_and(|tail| !tail.is_empty());
                }
            }
        }
        path.next().is_none()
    }

    /// Decoded parameters, in template order; call only after `matches`.
    fn capture(&self, segs: &[PathSegment<'_>], rest: &str) -> Vec<(String, String)> {
        let mut params = Vec::new();
        for (segment, path) in self.segments.iter().zip(segs) {
            match segment {
                Segment::Literal(_) => {}
                Segment::Param(name) => params.push((name.clone(), path.decoded.to_string())),
                Segment::Greedy(name) => {
                    let tail = rest.get(path.start..).unwrap_or_default();
                    params.push((name.clone(), decode_path(tail).into_owned()));
                }
            }
        }
        params
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_segment(raw: &str) -> Result<Segment, String> {
    if raw.is_empty() {
        return Err("it has an empty segment (`//` or a trailing `/`)".into());
    }
    if let Some(inner) = raw.strip_prefix('{') {
        let Some(inner) = inner.strip_suffix('}') else {
            return Err(format!(
                "segment `{raw}`: a parameter must be a whole segment `{{name}}`"
            ));
        };
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "segment `{raw}`: a parameter name must be letters, digits or `_`"
            ));
        }
        return Ok(if greedy {
            Segment::Greedy(name.to_owned())
        } else {
            Segment::Param(name.to_owned())
        });
    }
    if let Some(bad) = raw.chars().find(|&c| !is_literal_char(c)) {
        let why = if bad == '{' || bad == '}' {
            "a parameter must be a whole segment `{name}`".to_owned()
        } else {
            format!("the character {bad:?} is not allowed")
        };
        return Err(format!("segment `{raw}`: {why}"));
    }
    Ok(Segment::Literal(raw.to_owned()))
}

fn is_literal_char(c: char) -> bool {
    c.is_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c)
}

/// Checks an API context (base path): `/` or `/a/b` without a trailing `/`.
pub fn validate_context(context: &str) -> Result<(), String> {
    const SHAPE: &str = "expected `/` or a path such as `/users` or `/shop/v1`: starting with `/`, \
no trailing `/`, segments of letters, digits and -._~!$&'()*+,;=:@";
    if context == "/" {
        return Ok(());
    }
    let Some(rest) = context.strip_prefix('/') else {
        return Err(format!("`{context}` must start with `/`; {SHAPE}"));
    };
    if rest.ends_with('/') {
        return Err(format!("`{context}` must not end with `/`; {SHAPE}"));
    }
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err(format!("`{context}` has an empty segment; {SHAPE}"));
        }
        if let Some(bad) = segment.chars().find(|&c| !is_literal_char(c)) {
            return Err(format!(
                "`{context}` has the character {bad:?}, which is not allowed; {SHAPE}"
            ));
        }
    }
    Ok(())
}

struct PathSegment<'p> {
    /// Byte offset of the segment in the rest of the path.
    start: usize,
    raw: &'p str,
    decoded: Cow<'p, str>,
}

/// `""` and `"/"` have no segments; `"/a//b/"` has `a`, ``, `b`, ``.
fn split_segments(rest: &str) -> Vec<PathSegment<'_>> {
    let Some(body) = rest.strip_prefix('/') else {
        return Vec::new();
    };
    if body.is_empty() {
        return Vec::new();
    }
    let mut start = 1;
    body.split('/')
        .map(|raw| {
            let segment = PathSegment {
                start,
                raw,
                decoded: decode_path(raw),
            };
            start += raw.len() + 1;
            segment
        })
        .collect()
}

struct Route<T> {
    verb: Verb,
    template: Template,
    target: T,
}

/// The routes of one API, kept in the order they are tried.
pub struct ApiRoutes<T> {
    context: String,
    routes: Vec<Route<T>>,
    resource_first: bool,
}

impl<T> ApiRoutes<T> {
    /// `context` must have passed [`validate_context`]; `resources` are in
    /// declaration order.
    pub fn new(context: String, resources: Vec<(Verb, Template, T)>) -> Self {
        let mut routes: Vec<Route<T>> = resources
            .into_iter()
            .map(|(verb, template, target)| Route {
                verb,
                template,
                target,
            })
            .collect();
        // Stable: declaration order breaks the remaining ties.
        routes.sort_by(|a, b| {
            a.template
                .cmp_specificity(&b.template)
                .then_with(|| (a.verb == Verb::Any).cmp(&(b.verb == Verb::Any)))
        });
        ApiRoutes {
            context,
            routes,
            resource_first: false,
        }
    }

    /// Route as a REST API does: the most specific resource that matches
    /// the path decides, then its methods (405 when it lacks the method);
    /// a less specific resource never takes the request over. Without
    /// this, as an HTTP API: the most specific route whose method matches.
    pub fn resource_first(mut self) -> Self {
        self.resource_first = true;
        self
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    /// The part of `path` after the context when the context covers it:
    /// segment by segment, each path segment percent-decoded as resources
    /// are matched (`/%75sers` is `/users`).
    fn rest<'p>(&self, path: &'p str) -> Option<&'p str> {
        if !path.starts_with('/') {
            return None;
        }
        if self.context == "/" {
            return Some(path);
        }
        let mut rest = path;
        for segment in self.context.split('/').skip(1) {
            let after = rest.strip_prefix('/')?;
            let end = after.find('/').unwrap_or(after.len());
            let (raw, tail) = after.split_at(end);
            if decode_path(raw) != segment {
                return None;
            }
            rest = tail;
        }
        Some(rest)
    }
}

/// The outcome of [`RouteTable::find`].
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch<'t, T> {
    /// No API's context covers the path: let the request continue.
    Outside,
    /// An API covers the path but no template matches: 404.
    NotFound,
    /// Templates match but not with this method: 405 with `Allow`.
    MethodNotAllowed { allow: Vec<Verb> },
    Found {
        target: &'t T,
        /// Decoded path parameters in template order.
        params: Vec<(String, String)>,
    },
}

/// Every API's routes, longest context first.
pub struct RouteTable<T> {
    apis: Vec<ApiRoutes<T>>,
}

impl<T> RouteTable<T> {
    /// Contexts must be distinct.
    pub fn new(mut apis: Vec<ApiRoutes<T>>) -> Self {
        apis.sort_by_key(|api| std::cmp::Reverse(api.context.len()));
        RouteTable { apis }
    }

    /// Routes `method` and `path` (without the query string).
    pub fn find(&self, method: &str, path: &str) -> RouteMatch<'_, T> {
        let Some((api, rest)) = self
            .apis
            .iter()
            .find_map(|api| Some((api, api.rest(path)?)))
        else {
            return RouteMatch::Outside;
        };
        let segs = split_segments(rest);
        let mut allow: Vec<Verb> = Vec::new();
        // REST: the first (most specific) matching template is the resource.
        let mut resource: Option<&Template> = None;
        for route in &api.routes {
            if !route.template.matches(&segs, rest) {
                continue;
            }
            if api.resource_first {
                match resource {
                    None => resource = Some(&route.template),
                    Some(first) if !first.same_shape(&route.template) => break,
                    Some(_) => {}
                }
            }
            if route.verb.matches(method) {
                return RouteMatch::Found {
                    target: &route.target,
                    params: route.template.capture(&segs, rest),
                };
            }
            if route.verb == Verb::Any {
                allow.extend(Verb::METHODS);
            } else {
                allow.push(route.verb);
            }
        }
        if allow.is_empty() {
            return RouteMatch::NotFound;
        }
        allow.sort_by_key(|v| v.as_str());
        allow.dedup();
        RouteMatch::MethodNotAllowed { allow }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Template {
        Template::parse(text).unwrap()
    }

    fn table(apis: &[(&str, &[(&str, &str)])]) -> RouteTable<String> {
        RouteTable::new(
            apis.iter()
                .map(|(context, resources)| {
                    ApiRoutes::new(
                        (*context).to_owned(),
                        resources
                            .iter()
                            .map(|(verb, template)| {
                                (
                                    Verb::parse(verb).unwrap(),
                                    t(template),
                                    format!("{context} {verb} {template}"),
                                )
                            })
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    fn found(
        table: &RouteTable<String>,
        method: &str,
        path: &str,
    ) -> (String, Vec<(String, String)>) {
        match table.find(method, path) {
            RouteMatch::Found { target, params } => (target.clone(), params),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_templates() {
        assert_eq!(t("/").param_names().count(), 0);
        let tpl = t("/user/{id}/files/{path+}");
        assert_eq!(tpl.param_names().collect::<Vec<_>>(), ["id", "path"]);
        assert_eq!(tpl.as_str(), "/user/{id}/files/{path+}");
        for (bad, why) in [
            ("user", "must start with `/`"),
            ("", "must start with `/`"),
            ("/user/", "empty segment"),
            ("/a//b", "empty segment"),
            ("/{a+}/b", "must be the last segment"),
            ("/{a}/{a}", "`a` is used twice"),
            ("/{a}/{a+}", "`a` is used twice"),
            ("/user{id}", "whole segment"),
            ("/{id", "whole segment"),
            ("/{}", "parameter name"),
            ("/{a-b}", "parameter name"),
            ("/{+}", "parameter name"),
            ("/a b", "' ' is not allowed"),
            ("/a?b", "'?' is not allowed"),
            ("/a%20", "'%' is not allowed"),
        ] {
            let err = Template::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                err.contains("expected a path starting with `/`"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn contexts() {
        for ok in ["/", "/users", "/shop/v1", "/a.b-c_d~"] {
            assert_eq!(validate_context(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("users", "must start with `/`"),
            ("/users/", "must not end with `/`"),
            ("/a//b", "empty segment"),
            ("/a b", "' '"),
            ("/{id}", "'{'"),
            ("", "must start with `/`"),
        ] {
            let err = validate_context(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn longest_context_wins_and_prefixes_are_whole_segments() {
        let routes = table(&[
            ("/users", &[("ANY", "/{p+}"), ("GET", "/")]),
            ("/users/admin", &[("GET", "/")]),
            ("/", &[("GET", "/health")]),
        ]);
        assert_eq!(
            found(&routes, "GET", "/users/admin").0,
            "/users/admin GET /"
        );
        assert_eq!(
            found(&routes, "GET", "/users/admin/").0,
            "/users/admin GET /"
        );
        assert_eq!(found(&routes, "GET", "/users/adminx").0, "/users ANY /{p+}");
        assert_eq!(found(&routes, "GET", "/users").0, "/users GET /");
        assert_eq!(found(&routes, "GET", "/users/").0, "/users GET /");
        assert_eq!(found(&routes, "GET", "/health").0, "/ GET /health");
        assert_eq!(routes.find("GET", "/usersx"), RouteMatch::NotFound);
        assert_eq!(routes.find("GET", "*"), RouteMatch::Outside);

        let only_users = table(&[("/users", &[("GET", "/")])]);
        assert_eq!(only_users.find("GET", "/usersx"), RouteMatch::Outside);
        assert_eq!(only_users.find("GET", "/"), RouteMatch::Outside);
        assert_eq!(only_users.find("GET", "/Users"), RouteMatch::Outside);
    }

    #[test]
    fn most_specific_template_wins_whatever_the_declaration_order() {
        let routes = table(&[(
            "/api",
            &[
                ("GET", "/{proxy+}"),
                ("GET", "/user/{id}/{rest+}"),
                ("GET", "/user/{id}"),
                ("GET", "/{kind}/me"),
                ("GET", "/user/me"),
                ("GET", "/user/{id}/profile"),
            ],
        )]);
        assert_eq!(found(&routes, "GET", "/api/user/me").0, "/api GET /user/me");
        assert_eq!(
            found(&routes, "GET", "/api/team/me").0,
            "/api GET /{kind}/me"
        );
        assert_eq!(
            found(&routes, "GET", "/api/user/7"),
            ("/api GET /user/{id}".to_owned(), p(&[("id", "7")]))
        );
        assert_eq!(
            found(&routes, "GET", "/api/user/7/profile").0,
            "/api GET /user/{id}/profile"
        );
        assert_eq!(
            found(&routes, "GET", "/api/user/7/photos/1"),
            (
                "/api GET /user/{id}/{rest+}".to_owned(),
                p(&[("id", "7"), ("rest", "photos/1")])
            )
        );
        assert_eq!(
            found(&routes, "GET", "/api/x/y/z"),
            ("/api GET /{proxy+}".to_owned(), p(&[("proxy", "x/y/z")]))
        );
        // A trailing slash is a segment of its own: `{rest+}` would get
        // nothing, so only the catch-all matches.
        assert_eq!(
            found(&routes, "GET", "/api/user/7/"),
            ("/api GET /{proxy+}".to_owned(), p(&[("proxy", "user/7/")]))
        );
    }

    #[test]
    fn trailing_slash_and_empty_segments() {
        let routes = table(&[("/api", &[("GET", "/user/{id}"), ("GET", "/f/{p+}")])]);
        assert_eq!(routes.find("GET", "/api/user/7/"), RouteMatch::NotFound);
        assert_eq!(routes.find("GET", "/api/user/"), RouteMatch::NotFound);
        assert_eq!(routes.find("GET", "/api/user//"), RouteMatch::NotFound);
        assert_eq!(routes.find("GET", "/api/f/"), RouteMatch::NotFound);
        assert_eq!(found(&routes, "GET", "/api/f/a/").1, p(&[("p", "a/")]));
    }

    #[test]
    fn explicit_verb_beats_any_on_the_same_template_then_declaration_order() {
        let routes = table(&[(
            "/",
            &[
                ("ANY", "/x"),
                ("GET", "/x"),
                ("ANY", "/{a}"),
                ("ANY", "/{b}"),
            ],
        )]);
        assert_eq!(found(&routes, "GET", "/x").0, "/ GET /x");
        assert_eq!(found(&routes, "POST", "/x").0, "/ ANY /x");
        assert_eq!(found(&routes, "POST", "/y").0, "/ ANY /{a}");
    }

    #[test]
    fn params_are_percent_decoded_and_literals_compare_decoded() {
        let routes = table(&[("/api", &[("GET", "/user/{id}"), ("GET", "/files/{path+}")])]);
        assert_eq!(
            found(&routes, "GET", "/api/user/J%C3%B6rg%20M").1,
            p(&[("id", "Jörg M")])
        );
        assert_eq!(
            found(&routes, "GET", "/api/us%65r/a%2Fb").1,
            p(&[("id", "a/b")])
        );
        assert_eq!(
            found(&routes, "GET", "/api/files/a%20b/c/d%2Fe").1,
            p(&[("path", "a b/c/d/e")])
        );
        assert_eq!(
            found(&routes, "GET", "/api/user/%FF").1,
            p(&[("id", "\u{FFFD}")])
        );
    }

    #[test]
    fn method_not_allowed_lists_sorted_verbs_and_head_is_not_get() {
        let routes = table(&[(
            "/api",
            &[
                ("PUT", "/user/{id}"),
                ("GET", "/user/{id}"),
                ("DELETE", "/{kind}/{id}"),
                ("GET", "/user/me"),
            ],
        )]);
        assert_eq!(
            routes.find("HEAD", "/api/user/7"),
            RouteMatch::MethodNotAllowed {
                allow: vec![Verb::Delete, Verb::Get, Verb::Put]
            }
        );
        // `GET /user/me` is more specific but has no PUT: the next template serves.
        assert_eq!(
            found(&routes, "PUT", "/api/user/me").0,
            "/api PUT /user/{id}"
        );
        assert_eq!(
            routes.find("get", "/api/user/7"),
            RouteMatch::MethodNotAllowed {
                allow: vec![Verb::Delete, Verb::Get, Verb::Put]
            }
        );
        let any = table(&[("/api", &[("ANY", "/a"), ("GET", "/b")])]);
        assert_eq!(found(&any, "PROPFIND", "/api/a").0, "/api ANY /a");
        assert_eq!(any.find("POST", "/api/c"), RouteMatch::NotFound);
    }

    #[test]
    fn any_in_allow_means_all_methods() {
        let routes = table(&[("/api", &[("GET", "/a"), ("ANY", "/{x}")])]);
        assert_eq!(found(&routes, "TRACE", "/api/a").0, "/api ANY /{x}");
        let routes = table(&[("/api", &[("GET", "/a"), ("POST", "/a")])]);
        assert_eq!(
            routes.find("TRACE", "/api/a"),
            RouteMatch::MethodNotAllowed {
                allow: vec![Verb::Get, Verb::Post]
            }
        );
    }

    #[test]
    fn same_shape_ignores_parameter_names() {
        assert!(t("/user/{id}").same_shape(&t("/user/{uid}")));
        assert!(t("/f/{a+}").same_shape(&t("/f/{b+}")));
        assert!(!t("/user/{id}").same_shape(&t("/user/me")));
        assert!(!t("/f/{a}").same_shape(&t("/f/{a+}")));
        assert!(!t("/").same_shape(&t("/a")));
    }

    #[test]
    fn verbs() {
        assert_eq!(Verb::parse("get"), Some(Verb::Get));
        assert_eq!(Verb::parse("ANY"), Some(Verb::Any));
        assert_eq!(Verb::parse("FETCH"), None);
        assert!(Verb::Any.matches("WHATEVER"));
        assert!(!Verb::Get.matches("HEAD"));
        assert!(!Verb::Get.matches("get"));
    }
}
