//! The `Condition` element: operators, their value checks, and their evaluation with AWS's rules
//! for absent keys (reference C.10):
//! - a key that is absent (or has no values) makes a positive operator false and a negated one
//!   (`StringNotEquals`, `NotIpAddress`, ...) TRUE — the gotcha that denies header-less PUTs;
//! - `...IfExists` makes an absent key satisfy the condition;
//! - `Null` tests presence (`"true"` = absent);
//! - `ForAnyValue:` is false on an absent key, `ForAllValues:` is true on one.
//!
//! Several keys under one operator AND; several values for one key OR (negated operators: the
//! request value must match none of them); several operators AND.

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

use crate::context::RequestContext;
use crate::error::PolicyError;
use crate::variables;
use crate::wildcard::Pattern;

/// `ForAnyValue:` / `ForAllValues:` prefix for multi-valued keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// The base condition operator, without prefix or `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorKind {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

/// All operators, in AWS spelling.
pub const OPERATOR_KINDS: &[OperatorKind] = &[
    OperatorKind::StringEquals,
    OperatorKind::StringNotEquals,
    OperatorKind::StringEqualsIgnoreCase,
    OperatorKind::StringNotEqualsIgnoreCase,
    OperatorKind::StringLike,
    OperatorKind::StringNotLike,
    OperatorKind::NumericEquals,
    OperatorKind::NumericNotEquals,
    OperatorKind::NumericLessThan,
    OperatorKind::NumericLessThanEquals,
    OperatorKind::NumericGreaterThan,
    OperatorKind::NumericGreaterThanEquals,
    OperatorKind::DateEquals,
    OperatorKind::DateNotEquals,
    OperatorKind::DateLessThan,
    OperatorKind::DateLessThanEquals,
    OperatorKind::DateGreaterThan,
    OperatorKind::DateGreaterThanEquals,
    OperatorKind::Bool,
    OperatorKind::BinaryEquals,
    OperatorKind::IpAddress,
    OperatorKind::NotIpAddress,
    OperatorKind::ArnEquals,
    OperatorKind::ArnLike,
    OperatorKind::ArnNotEquals,
    OperatorKind::ArnNotLike,
    OperatorKind::Null,
];

/// How two ordered values (numbers, dates) must relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Relation {
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Relation::Equal => request == policy,
            Relation::Less => request < policy,
            Relation::LessOrEqual => request <= policy,
            Relation::Greater => request > policy,
            Relation::GreaterOrEqual => request >= policy,
        }
    }
}

/// The positive comparison behind an operator; negated operators invert it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    StringExact,
    StringIgnoreCase,
    StringLike,
    Numeric(Relation),
    Date(Relation),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

impl OperatorKind {
    pub fn name(self) -> &'static str {
        use OperatorKind::*;
        match self {
            StringEquals => "StringEquals",
            StringNotEquals => "StringNotEquals",
            StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            StringLike => "StringLike",
            StringNotLike => "StringNotLike",
            NumericEquals => "NumericEquals",
            NumericNotEquals => "NumericNotEquals",
            NumericLessThan => "NumericLessThan",
            NumericLessThanEquals => "NumericLessThanEquals",
            NumericGreaterThan => "NumericGreaterThan",
            NumericGreaterThanEquals => "NumericGreaterThanEquals",
            DateEquals => "DateEquals",
            DateNotEquals => "DateNotEquals",
            DateLessThan => "DateLessThan",
            DateLessThanEquals => "DateLessThanEquals",
            DateGreaterThan => "DateGreaterThan",
            DateGreaterThanEquals => "DateGreaterThanEquals",
            Bool => "Bool",
            BinaryEquals => "BinaryEquals",
            IpAddress => "IpAddress",
            NotIpAddress => "NotIpAddress",
            ArnEquals => "ArnEquals",
            ArnLike => "ArnLike",
            ArnNotEquals => "ArnNotEquals",
            ArnNotLike => "ArnNotLike",
            Null => "Null",
        }
    }

    /// Operators that require the key NOT to match; these are true on an absent key.
    pub fn is_negated(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    fn comparison(self) -> Comparison {
        use OperatorKind::*;
        match self {
            StringEquals | StringNotEquals => Comparison::StringExact,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => Comparison::StringIgnoreCase,
            StringLike | StringNotLike => Comparison::StringLike,
            NumericEquals | NumericNotEquals => Comparison::Numeric(Relation::Equal),
            NumericLessThan => Comparison::Numeric(Relation::Less),
            NumericLessThanEquals => Comparison::Numeric(Relation::LessOrEqual),
            NumericGreaterThan => Comparison::Numeric(Relation::Greater),
            NumericGreaterThanEquals => Comparison::Numeric(Relation::GreaterOrEqual),
            DateEquals | DateNotEquals => Comparison::Date(Relation::Equal),
            DateLessThan => Comparison::Date(Relation::Less),
            DateLessThanEquals => Comparison::Date(Relation::LessOrEqual),
            DateGreaterThan => Comparison::Date(Relation::Greater),
            DateGreaterThanEquals => Comparison::Date(Relation::GreaterOrEqual),
            Bool => Comparison::Bool,
            BinaryEquals => Comparison::Binary,
            IpAddress | NotIpAddress => Comparison::Ip,
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => Comparison::Arn,
            Null => Comparison::Null,
        }
    }
}

/// A full operator name such as `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConditionOperator {
    pub set: Option<SetQualifier>,
    pub kind: OperatorKind,
    pub if_exists: bool,
}

impl ConditionOperator {
    /// Parses an operator name; prefixes, names and suffix compare case-insensitively.
    /// `Null` takes neither a set prefix nor `IfExists` (AWS rejects both).
    pub fn parse(name: &str) -> Option<ConditionOperator> {
        let (set, rest) = strip_prefix_ignore_case(name, "ForAnyValue:")
            .map(|rest| (Some(SetQualifier::ForAnyValue), rest))
            .or_else(|| strip_prefix_ignore_case(name, "ForAllValues:").map(|r| (Some(SetQualifier::ForAllValues), r)))
            .unwrap_or((None, name));
        let find = |base: &str| OPERATOR_KINDS.iter().copied().find(|k| k.name().eq_ignore_ascii_case(base));
        let (kind, if_exists) = match find(rest) {
            Some(kind) => (kind, false),
            None => {
                let base = strip_suffix_ignore_case(rest, "IfExists")?;
                (find(base)?, true)
            }
        };
        if kind == OperatorKind::Null && (if_exists || set.is_some()) {
            return None;
        }
        Some(ConditionOperator { set, kind, if_exists })
    }
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            None => {}
        }
        f.write_str(self.kind.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let split = text.len().checked_sub(suffix.len())?;
    let tail = text.get(split..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &text[..split])
}

/// One `"key": value-or-values` pair inside an operator block. `key` keeps the spelling of the
/// document (so GetBucketPolicy shows it back); matching uses its lower-case form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionEntry {
    pub key: String,
    pub values: Vec<String>,
}

/// One operator with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionBlock {
    pub operator: ConditionOperator,
    pub entries: Vec<ConditionEntry>,
}

/// Parses the `Condition` object of one statement.
pub(crate) fn parse_condition(value: &Value, statement: &str) -> Result<Vec<ConditionBlock>, PolicyError> {
    let Value::Object(operators) = value else {
        return Err(PolicyError::InvalidFieldType {
            statement: statement.to_string(),
            field: "Condition",
            expected: "an object mapping condition operators to keys",
        });
    };
    let blocks: Vec<ConditionBlock> =
        operators.iter().map(|(name, keys)| parse_block(name, keys, statement)).collect::<Result<_, _>>()?;
    // Operator names compare case-insensitively, so two spellings of one operator would collide
    // when the document is written back; refuse them instead of merging silently.
    for (i, block) in blocks.iter().enumerate() {
        if blocks[..i].iter().any(|earlier| earlier.operator == block.operator) {
            return Err(PolicyError::InvalidConditionBlock {
                statement: statement.to_string(),
                operator: block.operator.to_string(),
            });
        }
    }
    Ok(blocks)
}

fn parse_block(name: &str, keys: &Value, statement: &str) -> Result<ConditionBlock, PolicyError> {
    let operator = ConditionOperator::parse(name).ok_or_else(|| PolicyError::UnknownConditionOperator {
        statement: statement.to_string(),
        operator: name.to_string(),
    })?;
    let invalid_block =
        || PolicyError::InvalidConditionBlock { statement: statement.to_string(), operator: name.to_string() };
    let Value::Object(keys) = keys else { return Err(invalid_block()) };
    let mut entries = Vec::with_capacity(keys.len());
    for (key, raw) in keys {
        let values = condition_values(raw).ok_or_else(invalid_block)?;
        if key.is_empty() || values.is_empty() {
            return Err(invalid_block());
        }
        for value in &values {
            check_value(operator.kind, value).map_err(|reason| PolicyError::InvalidConditionValue {
                statement: statement.to_string(),
                operator: name.to_string(),
                key: key.clone(),
                value: value.clone(),
                reason,
            })?;
        }
        entries.push(ConditionEntry { key: key.clone(), values });
    }
    Ok(ConditionBlock { operator, entries })
}

/// Condition values may be strings, numbers or booleans, alone or in a list; all compare as text.
fn condition_values(raw: &Value) -> Option<Vec<String>> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match raw {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|v| vec![v]),
    }
}

/// Values that can never compare are refused up front rather than silently never matching.
fn check_value(kind: OperatorKind, value: &str) -> Result<(), &'static str> {
    match kind.comparison() {
        Comparison::Numeric(_) if parse_number(value).is_none() => Err("not a number"),
        Comparison::Date(_) if parse_date(value).is_none() => Err("not an ISO 8601 date or epoch seconds"),
        Comparison::Bool | Comparison::Null if parse_bool(value).is_none() => Err("expected \"true\" or \"false\""),
        Comparison::Ip if parse_cidr(value).is_none() => Err("not an IPv4 or IPv6 address or CIDR block"),
        _ => Ok(()),
    }
}

/// Whether every key of the block is satisfied by the request.
pub(crate) fn block_holds(block: &ConditionBlock, ctx: &RequestContext, substitute: bool) -> bool {
    block.entries.iter().all(|entry| entry_holds(block.operator, entry, ctx, substitute))
}

fn entry_holds(operator: ConditionOperator, entry: &ConditionEntry, ctx: &RequestContext, substitute: bool) -> bool {
    let request_values = ctx.lookup(&entry.key.to_ascii_lowercase());
    let present = !request_values.is_empty();
    if operator.kind == OperatorKind::Null {
        return entry.values.iter().any(|v| parse_bool(v) == Some(!present));
    }
    if !present {
        return match (operator.if_exists, operator.set) {
            (true, _) => true,
            (false, Some(SetQualifier::ForAllValues)) => true,
            (false, Some(SetQualifier::ForAnyValue)) => false,
            (false, None) => operator.kind.is_negated(),
        };
    }
    let matchers: Vec<ValueMatcher<'_>> =
        entry.values.iter().map(|p| ValueMatcher::compile(operator.kind.comparison(), p, ctx, substitute)).collect();
    let matches_any_policy_value = |request: &String| matchers.iter().any(|m| m.matches(request));
    let negated = operator.kind.is_negated();
    let satisfied = |request: &String| matches_any_policy_value(request) != negated;
    match operator.set {
        // Without a set prefix a negated operator needs every request value to miss every policy
        // value, a positive one needs one hit; for single-valued keys both read naturally.
        None if negated => !request_values.iter().any(matches_any_policy_value),
        None => request_values.iter().any(matches_any_policy_value),
        Some(SetQualifier::ForAnyValue) => request_values.iter().any(satisfied),
        Some(SetQualifier::ForAllValues) => request_values.iter().all(satisfied),
    }
}

/// One policy value, ready to compare against request values.
enum ValueMatcher<'a> {
    /// Case-sensitive equality with a value that has no policy variable (the common case).
    Exact(&'a str),
    Text {
        pattern: Option<Pattern>,
        ignore_case: bool,
    },
    Arn(Option<Pattern>),
    Numeric(Relation, Option<f64>),
    Date(Relation, Option<i128>),
    Bool(Option<bool>),
    Binary(String),
    Ip(Option<(IpAddr, u8)>),
}

impl<'a> ValueMatcher<'a> {
    fn compile(comparison: Comparison, policy_value: &'a str, ctx: &RequestContext, substitute: bool) -> Self {
        let lookup = |key: &str| ctx.single_value(key);
        let pattern = |wildcards: bool| variables::compile(policy_value, substitute, wildcards, &lookup);
        match comparison {
            Comparison::StringExact if !(substitute && variables::has_variable(policy_value)) => {
                ValueMatcher::Exact(policy_value)
            }
            Comparison::StringExact => ValueMatcher::Text { pattern: pattern(false), ignore_case: false },
            Comparison::StringIgnoreCase => {
                ValueMatcher::Text { pattern: pattern(false).map(|p| p.to_lowercase()), ignore_case: true }
            }
            Comparison::StringLike => ValueMatcher::Text { pattern: pattern(true), ignore_case: false },
            Comparison::Arn => ValueMatcher::Arn(pattern(true)),
            Comparison::Numeric(relation) => ValueMatcher::Numeric(relation, parse_number(policy_value)),
            Comparison::Date(relation) => ValueMatcher::Date(relation, parse_date(policy_value)),
            Comparison::Bool | Comparison::Null => ValueMatcher::Bool(parse_bool(policy_value)),
            Comparison::Binary => ValueMatcher::Binary(policy_value.to_string()),
            Comparison::Ip => ValueMatcher::Ip(parse_cidr(policy_value)),
        }
    }

    /// A request value that does not parse (e.g. a non-numeric value for a Numeric operator)
    /// matches nothing.
    fn matches(&self, request: &str) -> bool {
        match self {
            ValueMatcher::Exact(policy) => *policy == request,
            ValueMatcher::Text { pattern: Some(p), ignore_case: false } => p.matches(request),
            ValueMatcher::Text { pattern: Some(p), ignore_case: true } => p.matches(&request.to_lowercase()),
            ValueMatcher::Arn(Some(p)) => p.matches_arn(request),
            ValueMatcher::Numeric(relation, Some(policy)) => {
                parse_number(request).is_some_and(|r| relation.holds(r, *policy))
            }
            ValueMatcher::Date(relation, Some(policy)) => {
                parse_date(request).is_some_and(|r| relation.holds(r, *policy))
            }
            ValueMatcher::Bool(Some(policy)) => parse_bool(request) == Some(*policy),
            ValueMatcher::Binary(policy) => policy == request,
            ValueMatcher::Ip(Some(block)) => parse_ip(request).is_some_and(|ip| cidr_contains(*block, ip)),
            _ => false,
        }
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let plain =
        !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    text.parse::<f64>().ok().filter(|n| plain && n.is_finite())
}

/// An IP address or CIDR block: `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`.
pub(crate) fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let text = text.trim();
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => p.parse::<u8>().ok()?,
        Some(_) => return None,
        None => max,
    };
    (prefix <= max).then_some((address, prefix))
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let ip: IpAddr = text.trim().parse().ok()?;
    // Dual-stack listeners report IPv4 clients as ::ffff:a.b.c.d; policies name them as IPv4.
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    })
}

fn cidr_contains((network, prefix): (IpAddr, u8), ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// A date as nanoseconds since the Unix epoch. Accepts epoch seconds (`1700000000`, `1700000000.5`)
/// and ISO 8601: `2024-01-31`, `2024-01-31T12:00Z`, `2024-01-31T12:00:00.250+02:00`, ... A time
/// without a zone is UTC.
pub(crate) fn parse_date(text: &str) -> Option<i128> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return parse_epoch(text);
    }
    parse_iso8601(text)
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

fn parse_epoch(text: &str) -> Option<i128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 12 || fraction.contains('.') {
        return None;
    }
    let seconds: i128 = whole.parse().ok()?;
    Some(seconds * NANOS_PER_SECOND + parse_fraction(fraction)?)
}

/// `.250` → 250_000_000 ns; digits beyond nanoseconds are ignored.
fn parse_fraction(digits: &str) -> Option<i128> {
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i128 = 0;
    for i in 0..9 {
        let digit = digits.as_bytes().get(i).map_or(0, |d| i128::from(d - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(nanos)
}

fn parse_iso8601(text: &str) -> Option<i128> {
    let date = text.get(..10)?;
    let rest = &text[10..];
    let bytes = date.as_bytes();
    if bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: i64 = digits(&date[..4])?;
    let month: i64 = digits(&date[5..7])?;
    let day: i64 = digits(&date[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if rest.is_empty() {
        return Some(i128::from(seconds) * NANOS_PER_SECOND);
    }
    let time = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset_seconds) = split_zone(time)?;
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut fields = clock.split(':');
    let hour: i64 = digits(fields.next()?)?;
    let minute: i64 = digits(fields.next()?)?;
    let second: i64 = fields.next().map_or(Some(0), digits)?;
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if !fraction.is_empty() && clock.len() != 8 {
        return None;
    }
    seconds += hour * 3600 + minute * 60 + second - offset_seconds;
    Some(i128::from(seconds) * NANOS_PER_SECOND + parse_fraction(fraction)?)
}

/// Splits `12:00:00+02:00` into the clock and the offset in seconds east of UTC.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    let Some(sign_at) = time.find(['+', '-']) else {
        return Some((time, 0));
    };
    let (clock, zone) = time.split_at(sign_at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zone = zone[1..].replace(':', "");
    let (hours, minutes) = match zone.len() {
        2 => (digits(&zone)?, 0),
        4 => (digits(zone.get(..2)?)?, digits(zone.get(2..)?)?),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((clock, sign * (hours * 3600 + minutes * 60)))
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
