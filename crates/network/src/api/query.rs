//! Listing as Neutron does it, over rendered resources: filter by any filterable
//! attribute (a repeated parameter means "any of"), tag filters, `fields=`,
//! `sort_key`/`sort_dir`, and `limit`/`marker`/`page_reverse` with the
//! `<resources>_links` that let clients walk the pages.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use super::attrs::{parse_bool, Resource};
use crate::error::{NetworkError, Result};

#[derive(Debug, Default)]
pub struct ListQuery {
    filters: Vec<(String, Vec<String>)>,
    pub fields: Vec<String>,
    sorts: Vec<(String, bool)>,
    limit: Option<usize>,
    marker: Option<String>,
    page_reverse: bool,
    tags_all: Vec<String>,
    tags_any: Vec<String>,
    not_tags_all: Vec<String>,
    not_tags_any: Vec<String>,
    raw: Vec<(String, String)>,
}

fn invalid(message: String) -> NetworkError {
    NetworkError::invalid("HTTPBadRequest", message)
}

fn tag_list(v: &str) -> Vec<String> {
    v.split(',').filter(|s| !s.is_empty()).map(String::from).collect()
}

impl ListQuery {
    /// Reads a query string's pairs; unknown filters are refused
    /// (filter-validation), as are unknown sort keys.
    pub fn parse(pairs: &[(String, String)], r: &Resource, extra_filters: &[&str]) -> Result<ListQuery> {
        let mut q = ListQuery { raw: pairs.to_vec(), ..Default::default() };
        let mut sort_keys = Vec::new();
        let mut sort_dirs = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "fields" => q.fields.extend(v.split(',').filter(|s| !s.is_empty()).map(String::from)),
                "sort_key" => sort_keys.push(v.clone()),
                "sort_dir" => sort_dirs.push(v.clone()),
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        invalid(format!("Bad limit request: Limit must be an integer 0 or greater and not '{v}'."))
                    })?;
                    if n < 0 {
                        return Err(invalid(format!(
                            "Bad limit request: Limit must be an integer 0 or greater and not '{v}'."
                        )));
                    }
                    // Neutron treats limit=0 as no limit.
                    q.limit = (n > 0).then_some(n as usize);
                }
                "marker" => q.marker = Some(v.clone()),
                "page_reverse" => q.page_reverse = parse_bool(&Value::String(v.clone())).unwrap_or(false),
                "tags" => q.tags_all.extend(tag_list(v)),
                "tags-any" => q.tags_any.extend(tag_list(v)),
                "not-tags" => q.not_tags_all.extend(tag_list(v)),
                "not-tags-any" => q.not_tags_any.extend(tag_list(v)),
                key => {
                    let known = r.attr(key).is_some_and(|a| a.filter) || extra_filters.contains(&key);
                    if !known {
                        return Err(invalid(format!("{key} is invalid attribute for filtering")));
                    }
                    match q.filters.iter_mut().find(|(f, _)| f == key) {
                        Some((_, vals)) => vals.push(v.clone()),
                        None => q.filters.push((key.to_string(), vec![v.clone()])),
                    }
                }
            }
        }
        if !sort_dirs.is_empty() && sort_dirs.len() != sort_keys.len() {
            return Err(invalid("The number of sort_keys and sort_dirs must be same".into()));
        }
        for (i, key) in sort_keys.iter().enumerate() {
            if !r.attr(key).is_some_and(|a| a.sort) {
                return Err(invalid(format!("{key} is invalid attribute for sort_key")));
            }
            let asc = match sort_dirs.get(i).map(String::as_str) {
                None | Some("asc") => true,
                Some("desc") => false,
                Some(d) => {
                    return Err(invalid(format!("{d} is invalid value for sort_dir, valid value is 'asc' and 'desc'")))
                }
            };
            q.sorts.push((key.clone(), asc));
        }
        Ok(q)
    }

    /// The filter values given for `key`, if any.
    pub fn filter(&self, key: &str) -> Option<&[String]> {
        self.filters.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    fn matches(&self, item: &Map<String, Value>) -> bool {
        let tags: Vec<&str> = item
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let has = |t: &String| tags.contains(&t.as_str());
        if !self.tags_all.iter().all(has)
            || (!self.tags_any.is_empty() && !self.tags_any.iter().any(has))
            || (!self.not_tags_all.is_empty() && self.not_tags_all.iter().all(has))
            || self.not_tags_any.iter().any(has)
        {
            return false;
        }
        self.filters.iter().all(|(key, wanted)| wanted.iter().any(|w| value_matches(key, item.get(key.as_str()), w)))
    }

    /// Filters, sorts and pages `items` (already visible to the caller), and
    /// applies `fields=`. Returns the page and its links.
    pub fn apply(&self, items: Vec<Map<String, Value>>, collection_url: &str) -> Result<(Vec<Value>, Option<Value>)> {
        let mut items: Vec<Map<String, Value>> = items.into_iter().filter(|i| self.matches(i)).collect();
        let mut sorts = self.sorts.clone();
        if !sorts.iter().any(|(k, _)| k == "id") {
            // A total order, so markers are stable.
            let asc = sorts.first().is_none_or(|(_, a)| *a);
            sorts.push(("id".into(), asc));
        }
        items.sort_by(|a, b| {
            for (k, asc) in &sorts {
                let o = compare(a.get(k.as_str()), b.get(k.as_str()));
                if o != Ordering::Equal {
                    return if *asc { o } else { o.reverse() };
                }
            }
            Ordering::Equal
        });

        let mut links = None;
        if let Some(limit) = self.limit {
            let id_of = |m: &Map<String, Value>| m.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let pos = match &self.marker {
                Some(m) => Some(
                    items
                        .iter()
                        .position(|i| id_of(i) == *m)
                        .ok_or_else(|| NetworkError::invalid("HTTPBadRequest", format!("marker {m} not found")))?,
                ),
                None => None,
            };
            // A reverse page is the `limit` items before the marker, still
            // returned in forward order.
            let range = if self.page_reverse {
                let end = pos.unwrap_or(items.len());
                end.saturating_sub(limit)..end
            } else {
                let start = pos.map_or(0, |p| p + 1).min(items.len());
                start..(start + limit).min(items.len())
            };
            let page: Vec<Map<String, Value>> = items[range].to_vec();
            let full = page.len() >= limit;
            let mut l = Vec::new();
            // Neutron's rules: "next" unless a short forward page, "previous"
            // unless a short reverse page.
            if full || self.page_reverse {
                if let Some(last) = page.last() {
                    l.push(json!({"rel": "next", "href": self.link(collection_url, &id_of(last), false)}));
                }
            }
            if full || !self.page_reverse {
                if let Some(first) = page.first() {
                    l.push(json!({"rel": "previous", "href": self.link(collection_url, &id_of(first), true)}));
                }
            }
            if !l.is_empty() {
                links = Some(Value::Array(l));
            }
            items = page;
        }
        let out = items
            .into_iter()
            .map(|i| {
                if self.fields.is_empty() {
                    Value::Object(i)
                } else {
                    Value::Object(i.into_iter().filter(|(k, _)| self.fields.contains(k)).collect())
                }
            })
            .collect();
        Ok((out, links))
    }

    fn link(&self, base: &str, marker: &str, reverse: bool) -> String {
        let mut params: Vec<(String, String)> =
            self.raw.iter().filter(|(k, _)| k != "marker" && k != "page_reverse").cloned().collect();
        params.push(("marker".into(), marker.into()));
        if reverse {
            params.push(("page_reverse".into(), "True".into()));
        }
        let q: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        format!("{base}?{}", q.join("&"))
    }

    /// Keeps only the requested fields of one resource (show with `fields=`).
    pub fn project(&self, item: Map<String, Value>) -> Value {
        if self.fields.is_empty() {
            Value::Object(item)
        } else {
            Value::Object(item.into_iter().filter(|(k, _)| self.fields.contains(k)).collect())
        }
    }
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

/// Whether an attribute value matches one filter value, as Neutron compares
/// them: booleans and numbers by value, lists by membership, `fixed_ips` by
/// `ip_address=`, `subnet_id=` or `ip_address_substr=`.
fn value_matches(key: &str, v: Option<&Value>, wanted: &str) -> bool {
    let Some(v) = v else { return false };
    if key == "fixed_ips" {
        let Some(ips) = v.as_array() else { return false };
        let (k, want) = wanted.split_once('=').unwrap_or(("ip_address", wanted));
        return ips.iter().any(|ip| match k {
            "ip_address_substr" => ip.get("ip_address").and_then(Value::as_str).is_some_and(|a| a.contains(want)),
            _ => ip.get(k).and_then(Value::as_str) == Some(want),
        });
    }
    match v {
        Value::String(s) => s == wanted,
        Value::Bool(b) => parse_bool(&Value::String(wanted.into())) == Some(*b),
        Value::Number(n) => n.to_string() == wanted,
        Value::Null => wanted.is_empty() || wanted == "None",
        Value::Array(items) => items.iter().any(|i| value_matches(key, Some(i), wanted)),
        Value::Object(_) => false,
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::attrs::{read_only, writable, Check, Default};
    use super::*;

    const THING: Resource = Resource {
        singular: "thing",
        plural: "things",
        attrs: &[
            writable("name", Default::Str(""), Check::Str(255)),
            writable("admin_state_up", Default::Bool(true), Check::Bool),
            read_only("fixed_ips", true),
        ],
    };

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn items() -> Vec<Map<String, Value>> {
        (0..5)
            .map(|i| {
                json!({"id": format!("id{i}"), "name": format!("n{}", i % 2), "admin_state_up": i < 3,
                    "fixed_ips": [{"ip_address": format!("10.0.0.{i}"), "subnet_id": "s"}], "tags": if i == 0 { json!(["red"]) } else { json!([]) }})
                .as_object()
                .unwrap()
                .clone()
            })
            .collect()
    }

    #[test]
    fn filters_match_values_lists_booleans_and_fixed_ips() {
        let run = |p: &[(&str, &str)]| {
            let q = ListQuery::parse(&pairs(p), &THING, &[]).unwrap();
            q.apply(items(), "u").unwrap().0.len()
        };
        assert_eq!(run(&[("name", "n0")]), 3);
        assert_eq!(run(&[("name", "n0"), ("name", "n1")]), 5);
        assert_eq!(run(&[("admin_state_up", "False")]), 2);
        assert_eq!(run(&[("fixed_ips", "ip_address=10.0.0.4")]), 1);
        assert_eq!(run(&[("fixed_ips", "ip_address_substr=0.0.")]), 5);
        assert_eq!(run(&[("tags", "red")]), 1);
        assert_eq!(run(&[("not-tags", "red")]), 4);
        assert!(ListQuery::parse(&pairs(&[("bogus", "1")]), &THING, &[]).is_err());
        assert!(ListQuery::parse(&pairs(&[("sort_key", "bogus")]), &THING, &[]).is_err());
    }

    #[test]
    fn pages_walk_forward_and_back_without_repeats() {
        let q = ListQuery::parse(&pairs(&[("limit", "2"), ("sort_key", "name"), ("sort_dir", "desc")]), &THING, &[])
            .unwrap();
        let (page, links) = q.apply(items(), "http://h/v2.0/things").unwrap();
        assert_eq!(page.len(), 2);
        let next = links.unwrap()[0]["href"].as_str().unwrap().to_string();
        assert!(next.contains("marker="), "{next}");
        // Walk all pages via markers.
        let mut seen: Vec<String> = page.iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
        let mut marker = seen.last().cloned();
        while let Some(m) = marker {
            let q = ListQuery::parse(
                &pairs(&[("limit", "2"), ("sort_key", "name"), ("sort_dir", "desc"), ("marker", &m)]),
                &THING,
                &[],
            )
            .unwrap();
            let (page, links) = q.apply(items(), "u").unwrap();
            seen.extend(page.iter().map(|p| p["id"].as_str().unwrap().to_string()));
            let has_next = links.as_ref().is_some_and(|l| l.as_array().unwrap().iter().any(|x| x["rel"] == "next"));
            marker = if has_next { seen.last().cloned() } else { None };
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "{seen:?}");
    }

    #[test]
    fn fields_keep_only_what_was_asked() {
        let q = ListQuery::parse(&pairs(&[("fields", "id"), ("fields", "name")]), &THING, &[]).unwrap();
        let (page, _) = q.apply(items(), "u").unwrap();
        assert_eq!(page[0].as_object().unwrap().len(), 2);
    }
}
