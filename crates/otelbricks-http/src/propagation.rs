//! Carriers for `http::HeaderMap`, re-exported from `trace-context`: the extractor hands every
//! value of a repeated header to the propagator (`Extractor::get_all`), as W3C Trace Context needs
//! for `tracestate` and to detect a repeated `traceparent`.

pub use otelbricks_trace_context::{
    HeaderMapExtractor as HeaderExtractor, HeaderMapInjector as HeaderInjector,
};
