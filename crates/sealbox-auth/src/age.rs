//! How old a header-signed request is, for APIs stricter than SigV4's 15 minutes (the XKS proxy
//! API refuses requests more than 5 minutes from the proxy's clock).

use time::{Duration, OffsetDateTime};

use crate::signing_key::parse_amz_date;
use crate::SignedRequest;

/// `now - X-Amz-Date` (negative for a date ahead of `now`), or `None` without a well-formed
/// `X-Amz-Date`. The date is part of the string to sign, so after [`crate::verify`] accepted the
/// request it is the date the signer chose, not one changed on the way.
pub fn request_age(request: &SignedRequest<'_>, now: OffsetDateTime) -> Option<Duration> {
    let amz_date = request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("x-amz-date")).map(|(_, v)| v.trim())?;
    Some(now - parse_amz_date(amz_date)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: &'a [(&'a str, &'a str)]) -> SignedRequest<'a> {
        SignedRequest { method: "POST", path: "/", query: "", headers, body_sha256_hex: crate::EMPTY_SHA256 }
    }

    #[test]
    fn ages_of_past_future_and_missing_dates() {
        let now = parse_amz_date("20261124T120000Z").unwrap();
        let past = [("X-Amz-Date", "20261124T115400Z")];
        assert_eq!(request_age(&request(&past), now), Some(Duration::minutes(6)));
        let future = [("x-amz-date", " 20261124T120130Z ")];
        assert_eq!(request_age(&request(&future), now), Some(Duration::seconds(-90)));
        assert_eq!(request_age(&request(&[]), now), None);
        assert_eq!(request_age(&request(&[("x-amz-date", "yesterday")]), now), None);
    }
}
