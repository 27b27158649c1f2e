//! Host identity as resource attributes (the Python design's `system_info`).

use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::resource::{
    HOST_ARCH, HOST_NAME, OS_DESCRIPTION, OS_NAME, OS_TYPE, OS_VERSION,
};
use sysinfo::System;

/// Resource attributes describing this host: `os.type`, `os.description`, `os.name`,
/// `os.version`, `host.name`, `host.arch` (values as the semantic conventions enumerate them,
/// e.g. `linux`/`darwin`, `amd64`/`arm64`). Attributes the platform cannot tell are left out.
///
/// Merge them into the provider's resource, e.g.
/// `Resource::builder().with_attributes(otelbricks_host_metrics::resource_attributes())`.
pub fn resource_attributes() -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(OS_TYPE, os_type(std::env::consts::OS)),
        KeyValue::new(HOST_ARCH, host_arch(std::env::consts::ARCH)),
    ];
    let name = System::name().ok();
    let kernel = System::kernel_version().ok();
    let description =
        System::long_os_version()
            .ok()
            .or_else(|| name.clone())
            .map(|d| match &kernel {
                Some(kernel) => format!("{d} (kernel {kernel})"),
                None => d,
            });
    if let Some(description) = description {
        attributes.push(KeyValue::new(OS_DESCRIPTION, description));
    }
    if let Some(name) = name {
        attributes.push(KeyValue::new(OS_NAME, name));
    }
    if let Ok(version) = System::os_version() {
        attributes.push(KeyValue::new(OS_VERSION, version));
    }
    if let Ok(host) = System::host_name()
        && !host.is_empty()
    {
        attributes.push(KeyValue::new(HOST_NAME, host));
    }
    attributes
}

/// Rust's `std::env::consts::OS` to the semconv `os.type` enumeration.
fn os_type(os: &'static str) -> &'static str {
    match os {
        "macos" | "ios" => "darwin",
        "dragonfly" => "dragonflybsd",
        "solaris" | "illumos" => "solaris",
        other => other, // linux, windows, freebsd, netbsd, openbsd, aix are spelt the same
    }
}

/// Rust's `std::env::consts::ARCH` to the semconv `host.arch` enumeration.
fn host_arch(arch: &'static str) -> &'static str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        "powerpc" => "ppc32",
        "powerpc64" => "ppc64",
        other => other, // s390x, ia64 are spelt the same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_type_and_host_arch_use_semconv_enumeration_values() {
        assert_eq!(os_type("macos"), "darwin");
        assert_eq!(os_type("linux"), "linux");
        assert_eq!(os_type("windows"), "windows");
        assert_eq!(host_arch("x86_64"), "amd64");
        assert_eq!(host_arch("aarch64"), "arm64");
        assert_eq!(host_arch("s390x"), "s390x");
    }
}
