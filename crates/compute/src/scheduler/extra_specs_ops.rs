//! The comparison language of flavor extra specs, as Nova's filters read it:
//! `"<op> <value>"` against a host's value, or plain string equality.

/// Whether `value` (the host's) satisfies `requirement` (the flavor's).
pub fn matches(value: &str, requirement: &str) -> bool {
    let mut words = requirement.split_whitespace();
    let Some(op) = words.next() else { return value == requirement };
    let rest: Vec<&str> = words.collect();
    let num = |s: &str| s.trim().parse::<f64>().ok();
    let arg = rest.first().copied().unwrap_or_default();
    match op {
        "=" => matches!((num(value), num(arg)), (Some(v), Some(r)) if v >= r),
        "<=" => matches!((num(value), num(arg)), (Some(v), Some(r)) if v <= r),
        ">=" => matches!((num(value), num(arg)), (Some(v), Some(r)) if v >= r),
        "==" => matches!((num(value), num(arg)), (Some(v), Some(r)) if v == r),
        "!=" => matches!((num(value), num(arg)), (Some(v), Some(r)) if v != r),
        "s==" => value == arg,
        "s!=" => value != arg,
        "s<" => value < arg,
        "s<=" => value <= arg,
        "s>" => value > arg,
        "s>=" => value >= arg,
        "<in>" => value.contains(arg),
        "<all-in>" => rest.iter().all(|r| value.contains(r)),
        "<or>" => {
            let options: Vec<&str> = rest.iter().copied().filter(|w| *w != "<or>").collect();
            options.contains(&value)
        }
        _ => value == requirement,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn operators() {
        assert!(matches("Intel", "Intel"));
        assert!(!matches("AMD", "Intel"));
        assert!(matches("8", "= 4"));
        assert!(!matches("2", "= 4"));
        assert!(matches("4", "== 4.0"));
        assert!(matches("abc", "s== abc"));
        assert!(matches("x86_64,avx", "<in> avx"));
        assert!(matches("b", "<or> a <or> b"));
        assert!(matches("sse avx", "<all-in> sse avx"));
        assert!(!matches("sse", "<all-in> sse avx"));
    }
}
