//! The request cases of the W3C Trace Context test suite (`test/test.py` of w3c/trace-context,
//! main branch, with its Level 2 key grammar), replayed against extract + inject. Every case
//! passes with the default policy (`TraceStatePolicy::DiscardOnInvalid`); with the per-member
//! policy (`DropInvalidMembers`) the cases that expect a whole `tracestate` to be discarded keep
//! the valid members instead. `scripts/w3c-trace-context.sh` runs the suite itself
//! against a service built from the HTTP layers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;

use common::Fields;
use opentelemetry::{Context, propagation::TextMapPropagator};
use otelbricks_trace_context::{TraceStatePolicy, W3CTraceContextPropagator};

/// What the harness sees on the outgoing request: `None` when the trace was restarted,
/// else the continued trace-id and the outgoing tracestate as a map.
fn run(
    policy: TraceStatePolicy,
    headers: &[(&str, &str)],
) -> Option<(String, Vec<(String, String)>)> {
    let p = W3CTraceContextPropagator::new().with_tracestate_policy(policy);
    let f = Fields::new(headers);
    let cx = p.extract_with_context(&Context::new(), &f);
    let mut out = HashMap::new();
    p.inject_context(&cx, &mut out);
    let tp = out.get("traceparent")?;
    let ts = out
        .get("tracestate")
        .map(|s| {
            s.split(',')
                .map(|m| {
                    let (k, v) = m.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    Some((tp[3..35].to_string(), ts))
}

const ID: &str = "12345678901234567890123456789012";
const TP: &str = "00-12345678901234567890123456789012-1234567890123456-01";
const TP00: &str = "00-12345678901234567890123456789012-1234567890123456-00";

fn continued(policy: TraceStatePolicy, h: &[(&str, &str)]) -> bool {
    run(policy, h).is_some_and(|(id, _)| id == ID)
}

fn state(policy: TraceStatePolicy, h: &[(&str, &str)]) -> Vec<(String, String)> {
    run(policy, h).map(|(_, s)| s).unwrap_or_default()
}

fn has(policy: TraceStatePolicy, h: &[(&str, &str)], key: &str) -> bool {
    state(policy, h).iter().any(|(k, _)| k == key)
}

const BOTH: [TraceStatePolicy; 2] = [
    TraceStatePolicy::DropInvalidMembers,
    TraceStatePolicy::DiscardOnInvalid,
];

#[test]
fn traceparent_cases_of_the_w3c_test_suite_pass() {
    for p in BOTH {
        assert!(
            !continued(
                p,
                &[
                    (
                        "traceparent",
                        "00-12345678901234567890123456789011-1234567890123456-01"
                    ),
                    ("traceparent", TP),
                ]
            ),
            "duplicated"
        );
        for name in ["traceparent", "TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
            assert!(continued(p, &[(name, TP)]), "header name casing {name}");
        }
        for name in ["trace-parent", "trace_parent"] {
            assert!(!continued(p, &[(name, TP)]), "wrong header name {name}");
        }
        #[rustfmt::skip]
        let restart = [
            "00-12345678901234567890123456789012-1234567890123456-01.",
            "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
            "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
            "ff-12345678901234567890123456789012-1234567890123456-01",
            ".0-12345678901234567890123456789012-1234567890123456-01",
            "0.-12345678901234567890123456789012-1234567890123456-01",
            "000-12345678901234567890123456789012-1234567890123456-01",
            "0000-12345678901234567890123456789012-1234567890123456-01",
            "0-12345678901234567890123456789012-1234567890123456-01",
            "00-00000000000000000000000000000000-1234567890123456-01",
            "00-.2345678901234567890123456789012-1234567890123456-01",
            "00-1234567890123456789012345678901.-1234567890123456-01",
            "00-123456789012345678901234567890123-1234567890123456-01",
            "00-1234567890123456789012345678901-1234567890123456-01",
            "00-12345678901234567890123456789012-0000000000000000-01",
            "00-12345678901234567890123456789012-.234567890123456-01",
            "00-12345678901234567890123456789012-123456789012345.-01",
            "00-12345678901234567890123456789012-12345678901234567-01",
            "00-12345678901234567890123456789012-123456789012345-01",
            "00-12345678901234567890123456789012-1234567890123456-.0",
            "00-12345678901234567890123456789012-1234567890123456-0.",
            "00-12345678901234567890123456789012-1234567890123456-001",
            "00-12345678901234567890123456789012-1234567890123456-1",
        ];
        for tp in restart {
            assert!(!continued(p, &[("traceparent", tp)]), "{tp}");
        }
        #[rustfmt::skip]
        let keep = [
            "cc-12345678901234567890123456789012-1234567890123456-01",
            "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
            " 00-12345678901234567890123456789012-1234567890123456-01",
            "\t00-12345678901234567890123456789012-1234567890123456-01",
            "00-12345678901234567890123456789012-1234567890123456-01 ",
            "00-12345678901234567890123456789012-1234567890123456-01\t",
            "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
        ];
        for tp in keep {
            assert!(continued(p, &[("traceparent", tp)]), "{tp:?}");
        }
        // tracestate without traceparent is not propagated
        assert!(run(p, &[("tracestate", "foo=1")]).is_none());
    }
}

#[test]
fn tracestate_cases_of_the_w3c_test_suite_that_pass_under_both_policies() {
    for p in BOTH {
        let s = state(p, &[("traceparent", TP), ("tracestate", "foo=1,bar=2")]);
        assert_eq!(
            s,
            vec![("foo".into(), "1".into()), ("bar".into(), "2".into())]
        );
        for name in ["tracestate", "TraceState", "TrAcEsTaTe", "TRACESTATE"] {
            assert!(has(p, &[("traceparent", TP), (name, "foo=1")], "foo"));
        }
        for name in ["trace-state", "trace_state"] {
            assert!(!has(p, &[("traceparent", TP), (name, "foo=1")], "foo"));
        }
        assert!(state(p, &[("traceparent", TP), ("tracestate", "")]).is_empty());
        assert!(has(
            p,
            &[
                ("traceparent", TP),
                ("tracestate", "foo=1"),
                ("tracestate", "")
            ],
            "foo"
        ));
        assert!(has(
            p,
            &[
                ("traceparent", TP),
                ("tracestate", ""),
                ("tracestate", "foo=1")
            ],
            "foo"
        ));
        let s = state(
            p,
            &[
                ("traceparent", TP),
                ("tracestate", "foo=1,bar=2"),
                ("tracestate", "rojo=1,congo=2"),
                ("tracestate", "baz=3"),
            ],
        );
        let keys: Vec<&str> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["foo", "bar", "rojo", "congo", "baz"]);
        for dup in [
            &["foo=1,foo=1"][..],
            &["foo=1,foo=2"],
            &["foo=1", "foo=1"],
            &["foo=1", "foo=2"],
        ] {
            let mut h = vec![("traceparent", TP)];
            h.extend(dup.iter().map(|v| ("tracestate", *v)));
            assert!(has(p, &h, "foo"), "duplicated keys {dup:?}");
        }
        // all allowed characters
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let value: String = (0x20u8..=0x7e)
            .filter(|c| *c != b',' && *c != b'=')
            .map(char::from)
            .collect();
        for k in [key.to_string(), format!("{key}@a-z0-9_-*/")] {
            let m = format!("{k}={value}");
            let s = state(p, &[("traceparent", TP00), ("tracestate", &m)]);
            assert_eq!(s, vec![(k.clone(), value.clone())]);
        }
        // OWS
        for ts in [
            "foo=1 \t , \t bar=2, \t baz=3",
            "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
        ] {
            assert_eq!(
                state(p, &[("traceparent", TP), ("tracestate", ts)]).len(),
                3
            );
        }
        for ts in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(
                state(p, &[("traceparent", TP), ("tracestate", ts)]),
                vec![("foo".into(), "1".into())]
            );
        }
        // illegal key characters
        for (ts, k) in [
            ("foo =1", "foo "),
            ("FOO=1", "FOO"),
            ("foo.bar=1", "foo.bar"),
        ] {
            assert!(!has(p, &[("traceparent", TP), ("tracestate", ts)], k));
        }
        // 32 members kept
        let h = [
            ("traceparent", TP),
            (
                "tracestate",
                "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
            ),
            (
                "tracestate",
                "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
            ),
            (
                "tracestate",
                "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
            ),
            ("tracestate", "bar31=31,bar32=32"),
        ];
        assert_eq!(state(p, &h).len(), 32);
        // key length limits that are valid
        let k256 = "z".repeat(256);
        assert!(has(
            p,
            &[
                ("traceparent", TP),
                ("tracestate", "foo=1"),
                ("tracestate", &format!("{k256}=1"))
            ],
            "foo"
        ));
        let mt = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        let s = state(
            p,
            &[
                ("traceparent", TP),
                ("tracestate", "foo=1"),
                ("tracestate", &format!("{mt}=1")),
            ],
        );
        assert!(
            s.iter().any(|(k, _)| *k == mt),
            "14-character system-id kept"
        );
        // illegal values
        assert!(!has(
            p,
            &[("traceparent", TP), ("tracestate", "foo=bar=baz")],
            "foo"
        ));
        assert!(!has(
            p,
            &[("traceparent", TP), ("tracestate", "foo=,bar=3")],
            "foo"
        ));
    }
}

#[test]
fn level_2_vendor_keys_of_the_w3c_test_suite_are_kept_under_both_policies() {
    for p in BOTH {
        for (ts, key) in [
            ("foo@=1,bar=2", "foo@"),
            ("foo@@bar=1,bar=2", "foo@@bar"),
            ("foo@bar@baz=1,bar=2", "foo@bar@baz"),
        ] {
            let h = [("traceparent", TP00), ("tracestate", ts)];
            assert!(has(p, &h, key) && has(p, &h, "bar"), "{p:?} {ts}");
        }
        for key in [
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
        ] {
            let field = format!("{key}=1");
            let h = [
                ("traceparent", TP00),
                ("tracestate", "foo=1"),
                ("tracestate", field.as_str()),
            ];
            assert!(has(p, &h, &key) && has(p, &h, "foo"), "{p:?} {key}");
        }
        assert!(!has(
            p,
            &[("traceparent", TP00), ("tracestate", "foo=bar=baz")],
            "foo"
        ));
    }
}

/// Cases where the suite expects the whole header to be discarded.
fn whole_header_cases() -> Vec<(Vec<String>, &'static str)> {
    let n33 = "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10,\
               bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20,\
               bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30,\
               bar31=31,bar32=32,bar33=33";
    vec![
        (vec!["@foo=1,bar=2".into()], "bar"),
        (vec![n33.into()], "bar01"),
        (
            vec!["foo=1".into(), format!("{}=1", "z".repeat(257))],
            "foo",
        ),
        (vec!["foo=,bar=3".into()], "bar"),
    ]
}

#[test]
fn whole_header_discard_cases_of_the_w3c_test_suite_pass_with_the_default_policy() {
    for (fields, absent) in whole_header_cases() {
        let mut h = vec![("traceparent", TP)];
        h.extend(fields.iter().map(|f| ("tracestate", f.as_str())));
        assert!(continued(TraceStatePolicy::default(), &h));
        assert!(!has(TraceStatePolicy::default(), &h, absent), "{fields:?}");
    }
}

#[test]
fn the_per_member_policy_keeps_the_valid_members_where_the_suite_discards_the_header() {
    for (fields, kept) in whole_header_cases() {
        let mut h = vec![("traceparent", TP)];
        h.extend(fields.iter().map(|f| ("tracestate", f.as_str())));
        assert!(
            has(TraceStatePolicy::DropInvalidMembers, &h, kept),
            "{fields:?}"
        );
    }
}
