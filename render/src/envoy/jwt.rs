//! JWT authorizers in Envoy: its own `jwt_authn` filter verifies tokens
//! (signature against the issuer's JWKS, fetched through a cluster and
//! cached; `iss`, `aud`, `exp`, `nbf`) in verify-only mode (any
//! provider, or `allow_missing_or_failed`), and forwards each verified
//! payload in the issuer's header; the lambdagate filter then decides per resource
//! (401 without a payload, 403 without a scope). A `header_mutation`
//! filter first removes those headers from what the client sent, so a
//! payload header is always Envoy's.

use std::collections::BTreeMap;

use lambdagate_core::AuthorizerType;
use lambdagate_core::auth::authorizer::{jwks_host, jwt_payload_header};
use serde::Serialize;

use super::cluster::{Cluster, DiscoveryType, TransportSocket, UpstreamTlsContext, one_endpoint};
use super::proto::{Address, Any, Seconds, SocketAddress, TypeUrl};
use crate::definition::ApiDefinition;

/// How long Envoy keeps a JWKS before fetching it again.
const JWKS_CACHE_SECONDS: u32 = 600;

#[derive(Serialize)]
pub(crate) struct HeaderMutation {
    mutations: Mutations,
}

impl TypeUrl for HeaderMutation {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";
}

#[derive(Serialize)]
struct Mutations {
    request_mutations: Vec<Remove>,
}

#[derive(Serialize)]
struct Remove {
    remove: String,
}

#[derive(Serialize)]
pub(crate) struct JwtAuthentication {
    providers: BTreeMap<String, JwtProvider>,
    rules: Vec<RequirementRule>,
}

impl TypeUrl for JwtAuthentication {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
}

#[derive(Serialize)]
struct JwtProvider {
    issuer: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    audiences: Vec<String>,
    remote_jwks: RemoteJwks,
    from_headers: Vec<JwtHeader>,
    /// The token still reaches the function (as API Gateway passes it).
    forward: bool,
    forward_payload_header: String,
    /// Verified tokens kept per worker: a client's next request with the
    /// same token skips the signature check (off by default in Envoy).
    jwt_cache_config: JwtCacheConfig,
}

#[derive(Serialize)]
struct JwtCacheConfig {
    jwt_cache_size: u32,
}

/// Verified JWTs each Envoy worker keeps (Envoy still checks `exp` on a
/// cached one).
const JWT_CACHE_SIZE: u32 = 1000;

#[derive(Serialize)]
struct RemoteJwks {
    http_uri: HttpUri,
    cache_duration: Seconds,
}

#[derive(Serialize)]
struct HttpUri {
    uri: String,
    cluster: String,
    timeout: Seconds,
}

#[derive(Serialize)]
struct JwtHeader {
    name: String,
    value_prefix: &'static str,
}

#[derive(Serialize)]
struct RequirementRule {
    #[serde(rename = "match")]
    path: PrefixMatch,
    requires: Requirement,
}

#[derive(Serialize)]
struct PrefixMatch {
    prefix: &'static str,
}

/// `requires_any`: each issuer's provider, then "missing or failed is
/// fine" (the filter decides). Naming the providers first is what makes
/// Envoy use its cache of verified tokens (measured: with
/// `allow_missing_or_failed` alone, `jwt_cache_hit` stays 0).
#[derive(Serialize)]
struct Requirement {
    requires_any: RequirementList,
}

#[derive(Serialize)]
struct RequirementList {
    requirements: Vec<OneRequirement>,
}

/// One of the two (a struct, not an enum: serde_yaml writes enum variants
/// as YAML tags, which Envoy does not read).
#[derive(Serialize)]
struct OneRequirement {
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_missing_or_failed: Option<Empty>,
}

#[derive(Serialize)]
struct Empty {}

/// What every JWT authorizer needs in the bootstrap; see [`jwt_pieces`].
pub(crate) struct JwtPieces {
    /// The first filter: removes the payload headers a client sent.
    pub(crate) header_mutation: HeaderMutation,
    /// The second: verifies tokens, forwards payloads.
    pub(crate) jwt_authn: JwtAuthentication,
    /// One per JWKS scheme, host and port.
    pub(crate) clusters: Vec<Cluster>,
}

/// The filters (before the lambdagate filter) and the JWKS clusters of
/// every JWT authorizer; `None` when there is none.
pub(crate) fn jwt_pieces(apis: &[ApiDefinition]) -> Result<Option<JwtPieces>, String> {
    // One provider per issuer: Envoy verifies a token with the provider of
    // its `iss`, so authorizers of one issuer share it (the same keys and
    // header; each authorizer's audiences are checked by the filter).
    let mut providers: BTreeMap<String, JwtProvider> = BTreeMap::new();
    let mut removes = Vec::new();
    let mut clusters: Vec<(String, Cluster)> = Vec::new();
    for api in apis {
        for authorizer in &api.api.authorizers {
            if authorizer.kind != AuthorizerType::Jwt {
                continue;
            }
            let issuer = authorizer.issuer.clone().unwrap_or_default();
            let uri = authorizer.jwks_uri.clone().unwrap_or_default();
            let (https, host, port, _) = jwks_host(&uri)
                .ok_or_else(|| format!("`{uri}` is not an http:// or https:// URL with a host"))?;
            let from = authorizer
                .identity_source
                .first()
                .and_then(|s| {
                    s.strip_prefix("method.request.header.")
                        .or_else(|| s.strip_prefix("$request.header."))
                })
                .unwrap_or("Authorization")
                .to_ascii_lowercase();
            if let Some(known) = providers.get_mut(&issuer) {
                let same_header = known.from_headers.first().is_some_and(|h| h.name == from);
                if known.remote_jwks.http_uri.uri != uri || !same_header {
                    return Err(format!(
                        "the JWT authorizers of issuer `{issuer}` must share its jwks_uri and identity header (API `{}`, authorizer `{}` differs)",
                        api.api.name, authorizer.name
                    ));
                }
                // Any audience of any of them; empty (any) wins.
                if authorizer.audiences.is_empty() || known.audiences.is_empty() {
                    known.audiences.clear();
                } else {
                    for audience in &authorizer.audiences {
                        if !known.audiences.contains(audience) {
                            known.audiences.push(audience.clone());
                        }
                    }
                }
                continue;
            }
            let key = format!("{}://{host}:{port}", if https { "https" } else { "http" });
            let cluster = match clusters.iter().find(|(k, _)| *k == key) {
                Some((_, c)) => c.name.clone(),
                None => {
                    let name = format!("lambdagate_jwks_{}", clusters.len());
                    clusters.push((key, jwks_cluster(&name, https, &host, port)));
                    name
                }
            };
            let header = jwt_payload_header(&issuer);
            providers.insert(
                issuer.clone(),
                JwtProvider {
                    issuer,
                    audiences: authorizer.audiences.clone(),
                    remote_jwks: RemoteJwks {
                        http_uri: HttpUri {
                            uri,
                            cluster,
                            timeout: Seconds(5),
                        },
                        cache_duration: Seconds(JWKS_CACHE_SECONDS),
                    },
                    from_headers: vec![JwtHeader {
                        name: from,
                        value_prefix: "Bearer ",
                    }],
                    forward: true,
                    forward_payload_header: header.clone(),
                    jwt_cache_config: JwtCacheConfig {
                        jwt_cache_size: JWT_CACHE_SIZE,
                    },
                },
            );
            removes.push(Remove { remove: header });
        }
    }
    // Provider names: `issuer-0`, `issuer-1`, ... (an issuer is a URL).
    let providers: BTreeMap<String, JwtProvider> = providers
        .into_values()
        .enumerate()
        .map(|(i, p)| (format!("issuer-{i}"), p))
        .collect();
    let names: Vec<String> = providers.keys().cloned().collect();
    if providers.is_empty() {
        return Ok(None);
    }
    Ok(Some(JwtPieces {
        header_mutation: HeaderMutation {
            mutations: Mutations {
                request_mutations: removes,
            },
        },
        jwt_authn: JwtAuthentication {
            providers,
            rules: vec![RequirementRule {
                path: PrefixMatch { prefix: "/" },
                requires: Requirement {
                    requires_any: RequirementList {
                        requirements: names
                            .into_iter()
                            .map(|name| OneRequirement {
                                provider_name: Some(name),
                                allow_missing_or_failed: None,
                            })
                            .chain([OneRequirement {
                                provider_name: None,
                                allow_missing_or_failed: Some(Empty {}),
                            }])
                            .collect(),
                    },
                },
            }],
        },
        clusters: clusters.into_iter().map(|(_, c)| c).collect(),
    }))
}

fn jwks_cluster(name: &str, https: bool, host: &str, port: u16) -> Cluster {
    Cluster {
        name: name.to_owned(),
        discovery_type: DiscoveryType::StrictDns,
        connect_timeout: Seconds(5),
        typed_extension_protocol_options: None,
        load_assignment: one_endpoint(
            name,
            Address::Socket {
                socket_address: SocketAddress {
                    address: host.to_owned(),
                    port_value: port,
                },
            },
        ),
        transport_socket: https.then(|| TransportSocket {
            name: "envoy.transport_sockets.tls",
            typed_config: Any(UpstreamTlsContext {
                sni: host.to_owned(),
            }),
        }),
    }
}
