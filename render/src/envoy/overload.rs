//! Envoy's overload manager as render sets it: the heap limit with the
//! actions Envoy's edge guidance asks for, and the global limit on
//! downstream connections. Thresholds are fractions of the heap limit.

use serde::Serialize;

use super::proto::{Any, Millis, TypeUrl};
use crate::limits::EdgeLimits;

#[derive(Serialize)]
pub(crate) struct OverloadManager {
    refresh_interval: Millis,
    buffer_factory_config: BufferFactoryConfig,
    resource_monitors: Vec<ResourceMonitor>,
    actions: Vec<OverloadAction>,
}

/// Envoy's buffer accounting: the HTTP/2 streams holding at least 2^20
/// bytes (1 MiB) are tracked, so `reset_high_memory_stream` can reset
/// those holding the most. (HTTP/1 uploads are not tracked by Envoy: the
/// filter's upload budget bounds those.)
#[derive(Serialize)]
struct BufferFactoryConfig {
    minimum_account_to_track_power_of_two: u32,
}

#[derive(Serialize)]
struct ResourceMonitor {
    name: &'static str,
    typed_config: MonitorConfig,
}

#[derive(Serialize)]
#[serde(untagged)]
enum MonitorConfig {
    FixedHeap(Any<FixedHeapConfig>),
    DownstreamConnections(Any<DownstreamConnectionsConfig>),
}

#[derive(Serialize)]
struct FixedHeapConfig {
    max_heap_size_bytes: u64,
}

impl TypeUrl for FixedHeapConfig {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig";
}

#[derive(Serialize)]
struct DownstreamConnectionsConfig {
    max_active_downstream_connections: u64,
}

impl TypeUrl for DownstreamConnectionsConfig {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig";
}

#[derive(Serialize)]
struct OverloadAction {
    name: &'static str,
    triggers: Vec<Trigger>,
}

#[derive(Serialize)]
struct Trigger {
    name: &'static str,
    #[serde(flatten)]
    kind: TriggerKind,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum TriggerKind {
    /// The action is on above `value`.
    Threshold { value: f64 },
    /// The action grows from `scaling_threshold` to full at
    /// `saturation_threshold`.
    Scaled {
        scaling_threshold: f64,
        saturation_threshold: f64,
    },
}

const FIXED_HEAP: &str = "envoy.resource_monitors.fixed_heap";
const DOWNSTREAM_CONNECTIONS: &str = "envoy.resource_monitors.global_downstream_max_connections";

fn on_heap(name: &'static str, kind: TriggerKind) -> OverloadAction {
    OverloadAction {
        name,
        triggers: vec![Trigger {
            name: FIXED_HEAP,
            kind,
        }],
    }
}

/// The overload manager for `limits`. As the heap fills: at 90 % Envoy
/// returns free memory to the system; from 85 % to 95 % it resets, more
/// and more eagerly, the HTTP/2 streams holding the most buffered memory;
/// at 95 % it stops keeping connections alive and answers new requests
/// 503 (the gateway's JSON, see the listener's local reply), so a client
/// learns at once rather than hanging; at 99 % it refuses new connections.
pub(crate) fn overload_manager(limits: &EdgeLimits) -> OverloadManager {
    OverloadManager {
        refresh_interval: Millis(250),
        buffer_factory_config: BufferFactoryConfig {
            minimum_account_to_track_power_of_two: 20,
        },
        resource_monitors: vec![
            ResourceMonitor {
                name: FIXED_HEAP,
                typed_config: MonitorConfig::FixedHeap(Any(FixedHeapConfig {
                    max_heap_size_bytes: limits.heap_bytes,
                })),
            },
            ResourceMonitor {
                name: DOWNSTREAM_CONNECTIONS,
                typed_config: MonitorConfig::DownstreamConnections(Any(
                    DownstreamConnectionsConfig {
                        max_active_downstream_connections: limits.connections,
                    },
                )),
            },
        ],
        actions: vec![
            on_heap(
                "envoy.overload_actions.shrink_heap",
                TriggerKind::Threshold { value: 0.90 },
            ),
            on_heap(
                "envoy.overload_actions.reset_high_memory_stream",
                TriggerKind::Scaled {
                    scaling_threshold: 0.85,
                    saturation_threshold: 0.95,
                },
            ),
            on_heap(
                "envoy.overload_actions.disable_http_keepalive",
                TriggerKind::Threshold { value: 0.95 },
            ),
            on_heap(
                "envoy.overload_actions.stop_accepting_requests",
                TriggerKind::Threshold { value: 0.95 },
            ),
            on_heap(
                "envoy.overload_actions.reject_incoming_connections",
                TriggerKind::Threshold { value: 0.99 },
            ),
        ],
    }
}
