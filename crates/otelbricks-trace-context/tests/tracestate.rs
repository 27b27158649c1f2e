//! Table-driven tests of `tracestate` parsing, validation, limits and formatting (§3.3).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use otelbricks_trace_context::{
    KeyError as K, TraceStateError as E, TraceStatePolicy, ValueError as V, W3CTraceState,
    parse_tracestate, parse_tracestate_with, validate_key, validate_key_level1, validate_value,
};

fn pairs(s: &W3CTraceState) -> Vec<(String, String)> {
    s.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn header_of(fields: &[&str]) -> String {
    parse_tracestate(fields).state.header()
}

#[test]
fn valid_keys_are_accepted() {
    let all_simple = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let with_vendor = format!("{all_simple}@a-z0-9_-*/");
    let longest_simple = "z".repeat(256);
    let longest_tenant = format!("{}@{}", "t".repeat(241), "v".repeat(14));
    #[rustfmt::skip]
    let table: Vec<(&str, &str)> = vec![
        ("a", "one lowercase letter"),
        ("foo", "simple"),
        (all_simple, "every allowed simple-key character"),
        (&with_vendor, "every allowed multi-tenant character"),
        (&longest_simple, "256-character simple key"),
        (&longest_tenant, "241-character tenant, 14-character system"),
        ("0tenant@sys", "tenant-id may start with a digit"),
        ("t@s", "shortest multi-tenant key"),
        ("fw529a3039@dt", "multi-tenant example from the spec"),
    ];
    for (key, why) in table {
        assert_eq!(validate_key(key), Ok(()), "{why}: {key:?}");
        assert_eq!(
            validate_key_level1(key),
            Ok(()),
            "Level 1 too, {why}: {key:?}"
        );
    }
    // Level 2 only: `@` is an ordinary keychar after the first character, and a digit may
    // start any key (W3C test suite test_tracestate_key_illegal_vendor_format and
    // test_tracestate_key_length_limit).
    let tenant_242 = format!("{}@v", "t".repeat(242));
    let system_15 = format!("t@{}", "v".repeat(15));
    for key in [
        "foo@",
        "foo@@bar",
        "foo@bar@baz",
        "1abc",
        "t@1sys",
        &tenant_242,
        &system_15,
    ] {
        assert_eq!(validate_key(key), Ok(()), "{key:?}");
        assert!(validate_key_level1(key).is_err(), "{key:?}");
    }
}

#[test]
fn invalid_keys_are_rejected_with_the_reason() {
    let simple_257 = "z".repeat(257);
    #[rustfmt::skip]
    let level2: Vec<(&str, K, &str)> = vec![
        ("", K::Empty, "empty"),
        ("Foo", K::InvalidChar('F'), "uppercase first"),
        ("fOo", K::InvalidChar('O'), "uppercase inside"),
        ("foo ", K::InvalidChar(' '), "trailing space inside the key"),
        ("foo.bar", K::InvalidChar('.'), "dot"),
        ("_abc", K::InvalidFirstChar, "key starting with '_'"),
        ("*abc", K::InvalidFirstChar, "key starting with '*'"),
        ("@foo", K::InvalidFirstChar, "key starting with '@'"),
        (&simple_257, K::TooLong(257), "257-character key"),
        ("é", K::InvalidChar('é'), "non-ASCII"),
    ];
    for (key, err, why) in level2 {
        assert_eq!(validate_key(key), Err(err), "{why}: {key:?}");
    }
    let tenant_242 = format!("{}@v", "t".repeat(242));
    let system_15 = format!("t@{}", "v".repeat(15));
    #[rustfmt::skip]
    let table: Vec<(&str, K, &str)> = vec![
        ("", K::Empty, "empty"),
        ("Foo", K::InvalidChar('F'), "uppercase first"),
        ("fOo", K::InvalidChar('O'), "uppercase inside"),
        ("foo ", K::InvalidChar(' '), "trailing space inside the key"),
        ("foo.bar", K::InvalidChar('.'), "dot"),
        ("1abc", K::InvalidFirstChar, "simple key starting with a digit"),
        ("_abc", K::InvalidFirstChar, "simple key starting with '_'"),
        ("*abc", K::InvalidFirstChar, "simple key starting with '*'"),
        (&simple_257, K::TooLong(257), "257-character simple key"),
        ("foo@", K::EmptySystem, "empty system-id"),
        ("@foo", K::EmptyTenant, "empty tenant-id"),
        ("foo@@bar", K::MultipleAt, "two '@' in a row"),
        ("foo@bar@baz", K::MultipleAt, "two '@'"),
        (&tenant_242, K::TenantTooLong(242), "242-character tenant"),
        (&system_15, K::SystemTooLong(15), "15-character system"),
        ("t@1sys", K::InvalidSystemFirstChar, "system-id starting with a digit"),
        ("-t@sys", K::InvalidTenantFirstChar, "tenant-id starting with '-'"),
        ("é", K::InvalidChar('é'), "non-ASCII"),
    ];
    for (key, err, why) in table {
        assert_eq!(
            validate_key_level1(key),
            Err(err),
            "Level 1, {why}: {key:?}"
        );
    }
}

#[test]
fn values_follow_the_value_grammar() {
    let printable: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect();
    let longest = "v".repeat(256);
    assert_eq!(validate_value(&printable), Ok(()), "all allowed characters");
    assert_eq!(validate_value(&longest), Ok(()), "256 characters");
    assert_eq!(
        validate_value(" leading"),
        Ok(()),
        "leading spaces are part of the value"
    );
    #[rustfmt::skip]
    let table: Vec<(String, V, &str)> = vec![
        (String::new(), V::Empty, "empty"),
        ("v".repeat(257), V::TooLong(257), "257 characters"),
        ("a=b".into(), V::InvalidChar('='), "equals sign"),
        ("a,b".into(), V::InvalidChar(','), "comma"),
        ("a\tb".into(), V::InvalidChar('\t'), "tab"),
        ("a\u{7f}".into(), V::InvalidChar('\u{7f}'), "DEL"),
        ("né".into(), V::InvalidChar('é'), "non-ASCII"),
        ("a ".into(), V::TrailingSpace, "trailing space"),
        (" ".into(), V::TrailingSpace, "only a space"),
    ];
    for (value, err, why) in table {
        assert_eq!(validate_value(&value), Err(err), "{why}: {value:?}");
    }
}

#[test]
fn multiple_fields_combine_in_order_into_one_list() {
    #[rustfmt::skip]
    let table: &[(&[&str], &str, &str)] = &[
        (&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"], "foo=1,bar=2,rojo=1,congo=2,baz=3", "three fields"),
        (&["", "foo=1"], "foo=1", "empty first field hides nothing (SDK loses foo)"),
        (&["foo=1", ""], "foo=1", "empty last field"),
        (&[" ", "\t", "foo=1"], "foo=1", "OWS-only fields"),
        (&["a=1,", ",b=2"], "a=1,b=2", "trailing and leading commas across fields"),
        (&[], "", "no field"),
        (&[""], "", "one empty field"),
    ];
    for (fields, out, why) in table {
        assert_eq!(header_of(fields), *out, "{why}: {fields:?}");
        assert!(parse_tracestate(fields).dropped.is_empty(), "{why}");
    }
}

#[test]
fn ows_around_members_and_empty_members_are_ignored() {
    #[rustfmt::skip]
    let table: &[(&str, &str)] = &[
        ("foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3"),
        ("foo=1\t \t,\t \tbar=2,\t \tbaz=3", "foo=1,bar=2,baz=3"),
        (" foo=1", "foo=1"),
        ("\tfoo=1", "foo=1"),
        ("foo=1 ", "foo=1"),
        ("foo=1\t", "foo=1"),
        ("\t foo=1 \t", "foo=1"),
        ("foo=1,,,bar=2", "foo=1,bar=2"),
        ("foo=1, ,\t,bar=2", "foo=1,bar=2"),
        (",", ""),
        ("foo= 1", "foo= 1"),
    ];
    for (input, out) in table {
        let p = parse_tracestate(&[input]);
        assert_eq!(p.state.header(), *out, "{input:?}");
        assert!(p.dropped.is_empty(), "{input:?}: {:?}", p.dropped);
    }
    assert_eq!(
        parse_tracestate(&["foo= 1"]).state.get("foo"),
        Some(" 1"),
        "leading space kept"
    );
}

#[test]
fn invalid_members_are_dropped_alone_with_the_per_member_policy() {
    #[rustfmt::skip]
    let table: &[(&str, &str, E)] = &[
        ("foo=1,Bad=2,bar=3", "foo=1,bar=3", E::InvalidKey { key: "Bad".into(), reason: K::InvalidChar('B') }),
        ("@foo=1,bar=2", "bar=2", E::InvalidKey { key: "@foo".into(), reason: K::InvalidFirstChar }),
        ("foo =1,bar=2", "bar=2", E::InvalidKey { key: "foo ".into(), reason: K::InvalidChar(' ') }),
        ("foo.bar=1,bar=2", "bar=2", E::InvalidKey { key: "foo.bar".into(), reason: K::InvalidChar('.') }),
        ("foo=bar=baz,bar=2", "bar=2", E::InvalidValue { key: "foo".into(), reason: V::InvalidChar('=') }),
        ("foo=,bar=3", "bar=3", E::InvalidValue { key: "foo".into(), reason: V::Empty }),
        ("foo,bar=3", "bar=3", E::MissingEquals { member: "foo".into() }),
        ("=1,bar=3", "bar=3", E::InvalidKey { key: "".into(), reason: K::Empty }),
        ("foo=a\u{1}b,bar=3", "bar=3", E::InvalidValue { key: "foo".into(), reason: V::InvalidChar('\u{1}') }),
        ("_odd=x,bar=3", "bar=3", E::InvalidKey { key: "_odd".into(), reason: K::InvalidFirstChar }),
    ];
    for (input, out, err) in table {
        let p = parse_tracestate(&[input]);
        assert_eq!(p.state.header(), *out, "{input:?}");
        assert_eq!(p.dropped, vec![err.clone()], "{input:?}");
    }
}

#[test]
fn invalid_members_discard_the_whole_header_with_the_strict_policy() {
    let strict = |s: &str| parse_tracestate_with(&[s], TraceStatePolicy::DiscardOnInvalid, 512);
    for input in [
        "foo=1,Bad=2,bar=3",
        "@foo=1,bar=2",
        "foo=bar=baz",
        "foo=,bar=3",
        "foo,bar=3",
    ] {
        assert!(strict(input).is_err(), "{input:?}");
    }
    assert_eq!(
        strict("foo=1, ,bar=2").unwrap().state.header(),
        "foo=1,bar=2"
    );
}

#[test]
fn duplicate_keys_keep_the_left_most_occurrence_under_both_policies() {
    #[rustfmt::skip]
    let table: &[(&[&str], &str)] = &[
        (&["foo=1,foo=1"], "foo=1"),
        (&["foo=1,foo=2"], "foo=1"),
        (&["foo=1", "foo=2"], "foo=1"),
        (&["foo=1,bar=2,foo=3,baz=4"], "foo=1,bar=2,baz=4"),
    ];
    for policy in [
        TraceStatePolicy::DropInvalidMembers,
        TraceStatePolicy::DiscardOnInvalid,
    ] {
        for (fields, out) in table {
            let p = parse_tracestate_with(fields, policy, 512).unwrap();
            assert_eq!(p.state.header(), *out, "{policy:?} {fields:?}");
            assert_eq!(p.dropped, vec![E::DuplicateKey { key: "foo".into() }]);
        }
    }
}

fn numbered(range: std::ops::RangeInclusive<usize>) -> String {
    range
        .map(|i| format!("bar{i:02}={i:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn thirty_two_members_are_kept() {
    let fields = [
        numbered(1..=10),
        numbered(11..=20),
        numbered(21..=30),
        numbered(31..=32),
    ];
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let p = parse_tracestate(&fields);
    assert_eq!(p.state.len(), 32);
    assert_eq!(p.state.get("bar01"), Some("01"));
    assert!(p.dropped.is_empty());
}

#[test]
fn members_beyond_thirty_two_are_dropped_from_the_right_by_default() {
    let input = numbered(1..=34);
    let p = parse_tracestate(&[&input]);
    assert_eq!(p.state.len(), 32);
    assert_eq!(p.state.get("bar32"), Some("32"));
    assert_eq!(p.state.get("bar33"), None);
    assert_eq!(p.dropped, vec![E::TooManyMembers { count: 34 }]);
}

#[test]
fn members_beyond_thirty_two_discard_the_header_with_the_strict_policy() {
    let input = numbered(1..=33);
    assert_eq!(
        parse_tracestate_with(&[&input], TraceStatePolicy::DiscardOnInvalid, 100_000),
        Err(E::TooManyMembers { count: 33 })
    );
}

#[test]
fn empty_and_invalid_members_do_not_count_towards_thirty_two() {
    let input = format!("{},,Bad=1, ,{}", numbered(1..=16), numbered(17..=32));
    let p = parse_tracestate(&[&input]);
    assert_eq!(p.state.len(), 32);
}

#[test]
fn over_512_characters_long_entries_are_removed_first_then_from_the_end() {
    // 4 short entries (7 chars each) + 2 long ones (a 200-char value) + more short ones.
    let long = "x".repeat(200);
    let input = format!("s1=aaaa,l1={long},s2=bbbb,l2={long},s3=cccc,s4=dddd,l3={long}");
    assert!(input.len() > 512);
    let p = parse_tracestate(&[&input]);
    // l3 (right-most long entry) goes first, then it fits: 4*7 + 2*203 + 5 commas = 439
    assert_eq!(
        p.state.header(),
        format!("s1=aaaa,l1={long},s2=bbbb,l2={long},s3=cccc,s4=dddd")
    );
    assert_eq!(
        p.dropped,
        vec![E::Truncated {
            key: "l3".into(),
            len: 203,
            limit: 512
        }]
    );
}

#[test]
fn with_only_short_entries_truncation_removes_from_the_end() {
    // 32 entries of 98 chars: only the first 5 fit in 512 (5*98 + 4 = 494, 6*98 + 5 = 593)
    let v = "v".repeat(94);
    let input: Vec<String> = (0..32).map(|i| format!("k{i:02}={v}")).collect();
    let input = input.join(",");
    let p = parse_tracestate(&[&input]);
    assert_eq!(p.state.len(), 5);
    assert_eq!(p.state.iter().last().unwrap().0, "k04");
    assert!(p.state.header().len() <= 512);
    assert_eq!(p.dropped.len(), 27);
}

#[test]
fn exactly_512_characters_are_kept_and_513_are_truncated() {
    let v252 = "v".repeat(252);
    let v253 = "v".repeat(253);
    let v254 = "v".repeat(254);
    let input = format!("k1={v252},k2={v252}");
    assert_eq!(input.len(), 511);
    assert_eq!(parse_tracestate(&[&input]).state.header(), input);
    let exactly = format!("k1={v253},k2={v252}");
    assert_eq!(exactly.len(), 512);
    assert_eq!(parse_tracestate(&[&exactly]).state.header(), exactly);
    let over = format!("k1={v254},k2={v252}");
    assert_eq!(over.len(), 513);
    assert_eq!(
        parse_tracestate(&[&over]).state.header(),
        format!("k1={v254}")
    );
}

#[test]
fn the_size_limit_is_configurable() {
    let p = parse_tracestate_with(&["a=1,b=2,c=3"], TraceStatePolicy::default(), 7).unwrap();
    assert_eq!(p.state.header(), "a=1,b=2");
}

#[test]
fn multi_tenant_keys_round_trip() {
    let key14 = format!("{}@{}", "t".repeat(241), "v".repeat(14));
    let input = format!("rojo@congo=1,{key14}=2,0x@y=3");
    let p = parse_tracestate(&[&input]);
    assert!(p.dropped.is_empty(), "{:?}", p.dropped);
    assert_eq!(p.state.header(), input);
}

#[test]
fn insert_moves_the_key_to_the_left_and_caps_at_thirty_two() {
    let mut s = parse_tracestate(&["a=1,b=2,c=3"]).state;
    s.insert("b", "9").unwrap();
    assert_eq!(s.header(), "b=9,a=1,c=3");
    s.insert("new", "x").unwrap();
    assert_eq!(s.header(), "new=x,b=9,a=1,c=3");
    assert!(s.insert("Bad", "x").is_err());
    let mut full = parse_tracestate(&[&numbered(1..=32)]).state;
    full.insert("z", "1").unwrap();
    assert_eq!(full.len(), 32);
    assert_eq!(full.get("bar32"), None, "right-most removed");
    assert_eq!(full.iter().next(), Some(("z", "1")));
    assert_eq!(full.remove("z"), Some("1".into()));
}

#[test]
fn from_pairs_validates_every_member() {
    assert!(W3CTraceState::from_pairs([("a", "1"), ("b", "2")]).is_ok());
    assert!(matches!(
        W3CTraceState::from_pairs([("a", "1"), ("a", "2")]),
        Err(E::DuplicateKey { .. })
    ));
    assert!(matches!(
        W3CTraceState::from_pairs([("A", "1")]),
        Err(E::InvalidKey { .. })
    ));
    let many: Vec<(String, String)> = (0..33).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_eq!(
        W3CTraceState::from_pairs(many),
        Err(E::TooManyMembers { count: 33 })
    );
    let s = W3CTraceState::from_pairs([("a", "1")]).unwrap();
    assert_eq!(pairs(&s), vec![("a".to_string(), "1".to_string())]);
}

#[test]
fn long_members_are_quoted_shortened_in_errors() {
    let key = "K".repeat(300);
    let p = parse_tracestate(&[&format!("{key}=1")]);
    let msg = p.dropped[0].to_string();
    assert!(msg.len() < 150, "{msg}");
    assert!(msg.contains("invalid key"), "{msg}");
}
