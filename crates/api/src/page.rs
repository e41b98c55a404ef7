//! Paging with `limit` and `marker`, as Nova, Neutron and Glance do it: a page holds
//! at most `limit` items after the one whose id is `marker`, and a `next` link is
//! given while more may follow. Clients page until a page comes back short, so an
//! ignored marker makes them loop forever.

use std::collections::HashMap;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

impl Page {
    /// Reads `limit` and `marker` from a query string's parameters.
    pub fn from_query(query: &HashMap<String, String>) -> ApiResult<Page> {
        let limit = match query.get("limit") {
            None => None,
            Some(s) => Some(s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::bad_request(format!("Invalid input for field 'limit': {s:?} is not a non-negative integer"))
            })? as usize),
        };
        let marker = query.get("marker").filter(|m| !m.is_empty()).cloned();
        Ok(Page { limit, marker })
    }

    /// Caps the limit at `max` (a service's `max_limit`).
    pub fn capped(mut self, max: usize) -> Page {
        self.limit = Some(self.limit.map_or(max, |l| l.min(max)));
        self
    }

    /// The page of `items` (already sorted) and, when the page is full, the marker
    /// for the next one. An unknown marker is a 400, as in Nova.
    pub fn apply<T>(&self, items: Vec<T>, id: impl Fn(&T) -> &str) -> ApiResult<(Vec<T>, Option<String>)> {
        let start = match &self.marker {
            None => 0,
            Some(m) => {
                items
                    .iter()
                    .position(|t| id(t) == m)
                    .ok_or_else(|| ApiError::bad_request(format!("marker [{m}] not found")))?
                    + 1
            }
        };
        let rest = items.into_iter().skip(start);
        match self.limit {
            None => Ok((rest.collect(), None)),
            Some(limit) => {
                let page: Vec<T> = rest.take(limit).collect();
                let next = (limit > 0 && page.len() == limit).then(|| page.last().map(|t| id(t).to_string())).flatten();
                Ok((page, next))
            }
        }
    }
}

/// The `next` link for a collection URL: the request's own parameters with
/// `marker` replaced.
pub fn next_link(collection_url: &str, query: &HashMap<String, String>, marker: &str) -> String {
    let mut params: Vec<(&String, &String)> = query.iter().filter(|(k, _)| k.as_str() != "marker").collect();
    params.sort();
    let mut url = format!("{collection_url}?");
    for (k, v) in params {
        url.push_str(&format!("{}={}&", encode(k), encode(v)));
    }
    url.push_str(&format!("marker={}", encode(marker)));
    url
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn pages_walk_the_whole_list_once() {
        let items: Vec<String> = (0..7).map(|i| format!("id{i}")).collect();
        let mut seen = Vec::new();
        let mut marker = None;
        loop {
            let page = Page { limit: Some(3), marker: marker.clone() };
            let (got, next) = page.apply(items.clone(), |s| s.as_str()).unwrap();
            seen.extend(got);
            match next {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn bad_limits_and_unknown_markers_are_400s() {
        assert_eq!(Page::from_query(&q(&[("limit", "-1")])).unwrap_err().status(), 400);
        assert_eq!(Page::from_query(&q(&[("limit", "x")])).unwrap_err().status(), 400);
        let p = Page::from_query(&q(&[("limit", "2"), ("marker", "nope")])).unwrap();
        assert_eq!(p.apply(vec!["a"], |s| s).unwrap_err().status(), 400);
        assert_eq!(Page::default().capped(5).limit, Some(5));
    }

    #[test]
    fn next_link_keeps_filters_and_replaces_the_marker() {
        let link = next_link("http://h/v2.0/ports", &q(&[("limit", "2"), ("marker", "old"), ("name", "a b")]), "m1");
        assert_eq!(link, "http://h/v2.0/ports?limit=2&name=a%20b&marker=m1");
    }
}
