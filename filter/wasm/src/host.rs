//! The host calls the filter makes, one wrapper per `proxy_wasm::hostcalls`
//! function it uses, so that they can be counted in one place.
//!
//! Without the `host-call-count` feature (every build users run) the
//! wrappers only forward: the counting functions are empty and inlined
//! away. With it (`bench/run --profile`), each host call and each callback
//! into the filter's code is counted, and every `FLUSH_EVERY` requests
//! (or at the end of a request that brought the sums to `FLUSH_COUNTS`:
//! a streamed response, counted on its own) the sums go to three Envoy
//! counters (`lambdagate_profile_*`), so the bench can divide by the
//! requests that were counted. The flush's own calls are not counted
//! (about 0.05 per request).

use std::time::{Duration, SystemTime};

use proxy_wasm::types::{BufferType, Bytes, LogLevel, MapType, MetricType, Status};

macro_rules! host_calls {
    ($( fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty; )*) => {
        $(
            #[inline(always)]
            pub(crate) fn $name($($arg: $ty),*) -> $ret {
                count::host_call();
                proxy_wasm::hostcalls::$name($($arg),*)
            }
        )*
    };
}

host_calls! {
    fn log(level: LogLevel, message: &str) -> Result<(), Status>;
    fn get_current_time() -> Result<SystemTime, Status>;
    fn get_buffer(buffer_type: BufferType, start: usize, max_size: usize) -> Result<Option<Bytes>, Status>;
    fn set_buffer(buffer_type: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status>;
    fn get_map_bytes(map_type: MapType) -> Result<Vec<(String, Bytes)>, Status>;
    fn set_map_bytes(map_type: MapType, map: Vec<(&str, &[u8])>) -> Result<(), Status>;
    fn get_map_value_bytes(map_type: MapType, key: &str) -> Result<Option<Bytes>, Status>;
    fn remove_map_value(map_type: MapType, key: &str) -> Result<(), Status>;
    fn get_property(path: Vec<&str>) -> Result<Option<Bytes>, Status>;
    fn set_property(path: Vec<&str>, value: Option<&[u8]>) -> Result<(), Status>;
    fn resume_http_request() -> Result<(), Status>;
    fn reset_http_response() -> Result<(), Status>;
    fn send_http_response(status_code: u32, headers: Vec<(&str, &str)>, body: Option<&[u8]>) -> Result<(), Status>;
    fn dispatch_grpc_call(
        upstream_name: &str,
        service_name: &str,
        method_name: &str,
        initial_metadata: Vec<(&str, &[u8])>,
        message: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, Status>;
    fn dispatch_http_call(
        upstream: &str,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
        trailers: Vec<(&str, &str)>,
        timeout: Duration,
    ) -> Result<u32, Status>;
    fn define_metric(metric_type: MetricType, name: &str) -> Result<u32, Status>;
    fn increment_metric(metric_id: u32, offset: i64) -> Result<(), Status>;
}

#[cfg(feature = "host-call-count")]
pub(crate) use counting::count;

#[cfg(not(feature = "host-call-count"))]
pub(crate) mod count {
    #[inline(always)]
    pub(crate) fn host_call() {}
    #[inline(always)]
    pub(crate) fn callback() {}
    #[inline(always)]
    pub(crate) fn request_ended() {}
}

#[cfg(feature = "host-call-count")]
mod counting {
    /// Requests per flush to Envoy's counters.
    pub(crate) const FLUSH_EVERY: u64 = 64;
    /// Or fewer, once this many host calls and callbacks are counted.
    pub(crate) const FLUSH_COUNTS: u64 = 256;

    pub(crate) mod count {
        use std::cell::Cell;

        use proxy_wasm::hostcalls;
        use proxy_wasm::types::MetricType;

        use super::{FLUSH_COUNTS, FLUSH_EVERY};

        /// Sums since the last flush: host calls, callbacks, requests.
        #[derive(Clone, Copy, Default)]
        struct Sums {
            host_calls: u64,
            callbacks: u64,
            requests: u64,
        }

        thread_local! {
            // One VM per worker thread, and a VM is single-threaded.
            static SUMS: Cell<Sums> = Cell::new(Sums::default());
            static METRICS: Cell<Option<[u32; 3]>> = const { Cell::new(None) };
        }

        fn add(f: impl FnOnce(&mut Sums)) -> Sums {
            SUMS.with(|cell| {
                let mut sums = cell.get();
                f(&mut sums);
                cell.set(sums);
                sums
            })
        }

        pub(crate) fn host_call() {
            add(|s| s.host_calls += 1);
        }

        pub(crate) fn callback() {
            add(|s| s.callbacks += 1);
        }

        pub(crate) fn request_ended() {
            let sums = add(|s| s.requests += 1);
            if sums.requests < FLUSH_EVERY && sums.host_calls + sums.callbacks < FLUSH_COUNTS {
                return;
            }
            SUMS.with(|cell| cell.set(Sums::default()));
            let Some(ids) = metrics() else { return };
            for (id, n) in ids
                .into_iter()
                .zip([sums.host_calls, sums.callbacks, sums.requests])
            {
                let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }

        fn metrics() -> Option<[u32; 3]> {
            if let Some(ids) = METRICS.with(Cell::get) {
                return Some(ids);
            }
            let define = |name| hostcalls::define_metric(MetricType::Counter, name).ok();
            let ids = [
                define("lambdagate_profile_host_calls")?,
                define("lambdagate_profile_callbacks")?,
                define("lambdagate_profile_requests")?,
            ];
            METRICS.with(|cell| cell.set(Some(ids)));
            Some(ids)
        }
    }
}
