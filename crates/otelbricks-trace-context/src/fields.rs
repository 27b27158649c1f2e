//! [`LogFields`]: plain fields that every log line written in an OpenTelemetry
//! [`Context`](opentelemetry::Context) carries.

use std::sync::Arc;

use smallvec::SmallVec;

/// Plain `snake_case` fields (`request_id`, `user_id`) that travel with an OpenTelemetry
/// [`Context`](opentelemetry::Context) inside the process and are never propagated to other
/// services (unlike baggage).
///
/// A server middleware that starts a request's span with the OpenTelemetry API (no `tracing`
/// span) puts them into the span's context; a log layer reads them from the current context, so
/// every line of the request carries them as it would carry the fields of an enclosing `tracing`
/// span.
///
/// ```
/// use opentelemetry::Context;
/// use otelbricks_trace_context::LogFields;
///
/// let cx = Context::new().with_value(LogFields::new().with("request_id", "r-1"));
/// let fields = cx.get::<LogFields>().unwrap();
/// assert_eq!(fields.iter().collect::<Vec<_>>(), [("request_id", "r-1")]);
/// ```
///
/// Up to [`LogFields::INLINE`] fields are held without an allocation of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFields {
    fields: SmallVec<[(&'static str, Arc<str>); LogFields::INLINE]>,
}

impl LogFields {
    /// How many fields are held inline (a request's `request_id` and `user_id`).
    pub const INLINE: usize = 2;

    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the field `name`, replacing one of the same name.
    pub fn with(mut self, name: &'static str, value: impl Into<Arc<str>>) -> Self {
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
        self
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| &**v)
    }

    /// The fields, in the order they were first added.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.fields.iter().map(|(k, v)| (*k, &**v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_added_twice_keeps_its_place_and_takes_the_new_value() {
        let f = LogFields::new()
            .with("request_id", "a")
            .with("user_id", "u")
            .with("request_id", "b");
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            [("request_id", "b"), ("user_id", "u")]
        );
        assert_eq!(f.get("user_id"), Some("u"));
        assert_eq!(f.get("missing"), None);
        assert!(!f.is_empty());
        assert!(LogFields::new().is_empty());
    }
}
